import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ephemeralPort, isPortFree } from '../../src/embedded/ports.js';
import { historyShardsFromEnv } from '../../src/temporal/server-profile.js';
import { waitFor } from '../support/control.js';
import { startCli } from '../support/cli.js';
import { processesUsing } from '../support/processes.js';

/**
 * `transfer up --profile server` as a user runs it, in a data directory of its own: a cold start
 * (schemas, namespace, search attributes set up) with the demo, then a warm start stopped by SIGTERM.
 * Each reports its start time; nothing may be left running or listening, also after a SIGTERM that
 * arrives in the middle of the start.
 */
let dataDir: string;
const BIN = new URL('../../bin/transfer.js', import.meta.url).pathname;
const say = (line: string) => process.stderr.write(`[server-profile up] ${line}\n`);

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'transfer-up-server-'));
  await chmod(dataDir, 0o755);
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

const start = (args: string[], dir = dataDir) => startCli(args, { ...process.env, TRANSFER_DATA_DIR: dir, TEMPORAL_OFFLINE: '1' });

const readyIn = (stderr: string) => Number(/Ready in ([\d.]+) s/.exec(stderr)?.[1]);

async function ports(): Promise<{ port: number; ui: number; metrics: number }> {
  return { port: await ephemeralPort(), ui: await ephemeralPort(), metrics: await ephemeralPort() };
}

describe('transfer up --profile server', () => {
  it('SIGTERM while the Temporal server sets up: exits 1 and leaves nothing running', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'transfer-up-server-int-'));
    await chmod(dir, 0o755);
    try {
      const p = await ports();
      const up = start(['up', '--profile', 'server', '--port', `${p.port}`, '--ui-port', `${p.ui}`, '--metrics-port', `${p.metrics}`], dir);
      // The server runs (its frontend answered) and the namespace is being registered: mid-start.
      await waitFor(() => up.output().includes('registering namespace default'), 120_000);
      up.child.kill('SIGTERM');
      const { code, stderr } = await up.done;
      expect(code, stderr).toBe(1);
      expect(stderr).toContain('SIGTERM during start: stopping what has started');
      // The children were signalled by pid as `up` exited; they take a moment to finish.
      await waitFor(async () => (await processesUsing(dir)).length === 0, 30_000);
      for (const port of [p.port, p.ui]) expect(await isPortFree(port), `port ${port}`).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('starts cold (schemas, namespace, search attributes), runs the demo on the Temporal server and stops cleanly with --exit', async () => {
    const p = await ports();
    const run = start(['up', '--profile', 'server', '--demo', '--exit', '--port', `${p.port}`, '--ui-port', `${p.ui}`, '--metrics-port', `${p.metrics}`]);
    const { code, stdout, stderr } = await run.done;
    expect(code, stderr).toBe(0);
    say(`cold start: ready in ${readyIn(stderr)} s`);
    expect(stderr).toContain('setting up the temporal schema (temporal-sql-tool)');
    expect(stderr).toContain('registering namespace default');
    expect(stderr).toMatch(new RegExp(`profile server: Temporal server v1\\.29\\.1 \\(pid \\d+\\) on PostgreSQL databases temporal \\+ temporal_visibility, ${historyShardsFromEnv()} history shards; Web UI server v2\\.42\\.1 \\(pid \\d+\\)`));
    expect(stderr).toContain(`Web UI        http://127.0.0.1:${p.ui}`);
    expect(stdout).toMatch(/\n\s+COMPLETED/);
    expect(stdout).toMatch(/\n\s+FAILED \(INSUFFICIENT_FUNDS\)/);
    expect(stdout).toMatch(/\n\s+COMPENSATED \(ACCOUNT_FROZEN\).*void-debit:ok\(voided\)/);
    expect(stdout).toMatch(/COMPLETED; the wallet service's row now says: completed/);
    expect(stdout).toContain('Ledger verify: ok');
    expect(stderr).toContain('stopped: PostgreSQL, Temporal server, Web UI and worker are down');
    expect(await processesUsing(dataDir)).toEqual([]);
    for (const port of [p.port, p.ui, p.metrics]) expect(await isPortFree(port), `port ${port}`).toBe(true);
    expect(existsSync(join(dataDir, 'embedded', 'stack.json'))).toBe(false);
    // Loopback only: the generated server config binds every service to 127.0.0.1.
    const config = await readFile(join(dataDir, 'embedded', 'temporal-server', 'config', 'development.yaml'), 'utf8');
    expect(config.match(/bindOnIP: 127\.0\.0\.1/g)).toHaveLength(4);
  });

  it('starts warm on the same data, serves the Web UI against the server, and stops on SIGTERM', async () => {
    const p = await ports();
    const up = start(['up', '--profile', 'server', '--port', `${p.port}`, '--ui-port', `${p.ui}`, '--metrics-port', `${p.metrics}`]);
    try {
      await waitFor(() => up.output().includes('Running.'), 180_000);
      say(`warm start: ready in ${readyIn(up.output())} s`);
      expect(up.output()).not.toContain('registering namespace');
      // The UI server's own API answers from the Temporal server: the demo's transfers are listed.
      const page = await fetch(`http://127.0.0.1:${p.ui}/`).then((r) => r.text());
      expect(page).toMatch(/<html/i);
      const settings = await fetch(`http://127.0.0.1:${p.ui}/api/v1/settings`).then((r) => r.json()) as { DefaultNamespace?: string };
      expect(settings.DefaultNamespace).toBe('default');
      const listed = await fetch(`http://127.0.0.1:${p.ui}/api/v1/namespaces/default/workflows?query=${encodeURIComponent("WorkflowId STARTS_WITH 'demo-'")}`).then((r) => r.json()) as { executions?: { execution: { workflowId: string } }[] };
      expect((listed.executions ?? []).length).toBeGreaterThanOrEqual(3);
    } finally {
      up.child.kill('SIGTERM');
    }
    const { code, stderr } = await up.done;
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('SIGTERM: shutting down');
    expect(stderr).toContain('stopped: PostgreSQL, Temporal server, Web UI and worker are down');
    expect(await processesUsing(dataDir)).toEqual([]);
    for (const port of [p.port, p.ui, p.metrics]) expect(await isPortFree(port), `port ${port}`).toBe(true);
  });
});
