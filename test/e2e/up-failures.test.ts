import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ephemeralPort } from '../../src/embedded/ports.js';
import { processesUsing } from '../support/processes.js';

/**
 * `transfer up` that cannot start must say why and exit, not hang: a process that never ends after
 * its error (and shrugs off SIGTERM and Ctrl-C) is what a user sees as a crash.
 */
const BIN = new URL('../../bin/transfer.js', import.meta.url).pathname;
const dirs: string[] = [];

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string>, limitMs: number, onStdout?: (all: string, pid: number) => void) {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
    onStdout?.(stdout, child.pid!);
  });
  child.stderr.on('data', (d) => (stderr += d));
  const started = Date.now();
  return new Promise<{ code: number | null; exitedByItself: boolean; stderr: string; ms: number }>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, exitedByItself: signal === null, stderr, ms: Date.now() - started });
    });
  });
}

describe('transfer up that cannot start', () => {
  it('exits 2 at once, naming the running stack, when another stack owns the data directory; reset too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'transfer-up-fail-'));
    dirs.push(dir);
    await mkdir(join(dir, 'embedded'), { recursive: true });
    // A live pid (this test process) in stack.json: the data directory is in use.
    await writeFile(join(dir, 'embedded', 'stack.json'), JSON.stringify({ pid: process.pid, webUi: 'http://127.0.0.1:1' }));
    const result = await run(['up', '--demo', '--exit', '--port', '1', '--ui-port', '2', '--metrics-port', '0'], { TRANSFER_DATA_DIR: dir, TEMPORAL_OFFLINE: '1' }, 15_000);
    expect(result.exitedByItself, `exited by itself within 15 s\n${result.stderr}`).toBe(true);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`an embedded stack is already running on ${join(dir, 'embedded')} (pid ${process.pid}, Web UI http://127.0.0.1:1)`);
    // Checked before anything heavy: no binary resolved, no PostgreSQL started.
    expect(result.stderr).not.toMatch(/Temporal dev server:|starting PostgreSQL/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    // Not a timing of performance: it exited by itself, well within what starting anything would take.
    expect(result.ms, 'exited within a few seconds').toBeLessThan(10_000);

    const reset = await run(['reset'], { TRANSFER_DATA_DIR: dir }, 15_000);
    expect([reset.exitedByItself, reset.code]).toEqual([true, 2]);
    expect(reset.stderr).toContain(`already running on ${join(dir, 'embedded')} (pid ${process.pid}`);
    expect(existsSync(join(dir, 'embedded', 'stack.json'))).toBe(true);
  });

  it('stops everything and exits 1 on Ctrl-C during the demo of `up --demo --exit`', { timeout: 180_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'transfer-up-int-'));
    dirs.push(dir);
    await chmod(dir, 0o755);
    const ports = [await ephemeralPort(), await ephemeralPort(), await ephemeralPort()];
    let sent = false;
    // Every transfer waits for approval (threshold 1 minor unit): the demo is still running when the signal comes.
    const result = await run(['up', '--demo', '--exit', '--port', `${ports[0]}`, '--ui-port', `${ports[1]}`, '--metrics-port', `${ports[2]}`],
      { TRANSFER_DATA_DIR: dir, TEMPORAL_OFFLINE: '1', TRANSFER_APPROVAL_THRESHOLD: '1' }, 150_000, (stdout, pid) => {
        if (!sent && stdout.includes('Balances before')) {
          sent = true;
          setTimeout(() => process.kill(pid, 'SIGINT'), 1_000);
        }
      });
    const leftover = await processesUsing(dir);
    for (const pid of leftover) process.kill(pid, 'SIGKILL'); // never leave a server behind, even when failing
    expect(sent, result.stderr.slice(-2000)).toBe(true);
    expect(result.exitedByItself, `exited by itself after SIGINT\n${result.stderr.slice(-1500)}`).toBe(true);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/transfer: SIGINT during the demo/);
    expect(result.stderr).toContain('stopped: PostgreSQL, Temporal dev server and worker are down');
    expect(leftover).toEqual([]);
    expect(existsSync(join(dir, 'embedded', 'stack.json'))).toBe(false);
  });
});
