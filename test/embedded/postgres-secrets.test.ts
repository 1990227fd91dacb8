import { existsSync, statSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/embedded/postgres.js';

/**
 * The embedded cluster's superuser password sits in a file next to its data. It must be readable by
 * its owner only from the instant it exists: a file created world-readable and tightened later can
 * be read by anyone in between (initdb takes seconds).
 */
let dir: string | undefined;
let postgres: RunningPostgres | undefined;

afterAll(async () => {
  await postgres?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the embedded PostgreSQL password file', () => {
  it('is 0600 from creation through initdb, and ends owned by us', async () => {
    dir = await mkdtemp(join(tmpdir(), 'transfer-secrets-'));
    await chmod(dir, 0o755); // as root, PostgreSQL runs as an unprivileged user that must reach it
    const file = join(dir, 'password');
    const modes = new Set<number>();
    // Watch the file as often as the event loop allows while initdb (a child process) runs.
    const watch = setInterval(() => {
      if (existsSync(file)) modes.add(statSync(file).mode & 0o777);
    }, 1);
    try {
      postgres = await startEmbeddedPostgres({ dir, databases: [], ephemeral: true });
    } finally {
      clearInterval(watch);
    }
    expect(modes.size, 'the file was observed while the cluster initialised').toBeGreaterThan(0);
    expect([...modes].map((m) => m.toString(8))).toEqual(['600']);
    const final = statSync(file);
    expect([final.mode & 0o777, final.uid]).toEqual([0o600, process.getuid!()]);
  });

  it('left readable by others (an older version), is made 0600 at the next start', async () => {
    await postgres!.stop();
    postgres = undefined;
    const file = join(dir!, 'password');
    await chmod(file, 0o644);
    postgres = await startEmbeddedPostgres({ dir: dir!, databases: [], ephemeral: true });
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
  });
});
