import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * `transfer up` that cannot start must say why and exit, not hang: a process that never ends after
 * its error (and shrugs off SIGTERM and Ctrl-C) is what a user sees as a crash.
 */
const BIN = new URL('../../bin/transfer.js', import.meta.url).pathname;
const dirs: string[] = [];

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string>, limitMs: number) {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise<{ code: number | null; exitedByItself: boolean; stderr: string }>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, exitedByItself: signal === null, stderr });
    });
  });
}

describe('transfer up that cannot start', () => {
  it('exits with its error when another stack owns the data directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'transfer-up-fail-'));
    dirs.push(dir);
    await mkdir(join(dir, 'embedded'), { recursive: true });
    // A live pid (this test process) in stack.json: the data directory is in use.
    await writeFile(join(dir, 'embedded', 'stack.json'), JSON.stringify({ pid: process.pid, webUi: 'http://127.0.0.1:1' }));
    const result = await run(['up', '--demo', '--exit', '--port', '1', '--ui-port', '2', '--metrics-port', '0'], { TRANSFER_DATA_DIR: dir, TEMPORAL_OFFLINE: '1' }, 30_000);
    expect(result.stderr).toContain(`an embedded stack is already running (pid ${process.pid}`);
    expect(result.exitedByItself, 'exited by itself within 30 s').toBe(true);
    expect(result.code).toBe(1);
  });
});
