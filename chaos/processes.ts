import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { childPids } from '../src/embedded/children.js';

/**
 * The processes a chaos run starts, tracked by pid so every fault and the final cleanup target
 * exactly what this run started (never a process found by name: other PostgreSQL and Temporal
 * servers on the machine are not ours).
 */

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !isZombie(pid);
  } catch {
    return false;
  }
}

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Waits until none of `pids` is alive (killed processes may take a moment to be reaped). */
export async function waitGone(pids: number[], timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(alive)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** A process and all its descendants, read from /proc before anything is killed. */
export function processTree(pid: number): number[] {
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...childPids(tree[i]));
  return tree;
}

/** kill -9 of a process and every descendant: what a crash of that program looks like. */
export async function killTree(pid: number): Promise<void> {
  const tree = processTree(pid);
  for (const p of tree) signal(p, 'SIGKILL');
  await waitGone(tree);
}

export interface Supervised {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Set before we stop or kill it on purpose; an exit without it is unexpected. */
  expectedExit: boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Everything the process wrote is in its log file: its pipes ended and the file's pending writes
   * are flushed ('exit' can come before the last lines are read). Bounded: a grandchild holding a
   * pipe open delays it at most 5 s after the exit.
   */
  drained: Promise<void>;
}

/**
 * Spawns a node program in its own process group (so a kill reaches the esbuild helper tsx starts
 * too), output appended to a log file.
 */
export function spawnGroup(name: string, command: string, args: string[], options: { env: NodeJS.ProcessEnv; cwd: string; logFile: string }): Supervised {
  const log = createWriteStream(options.logFile, { flags: 'a' });
  log.write(`--- ${new Date().toISOString()} start ${name}\n`);
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, sig) => resolve({ code, signal: sig }));
    child.once('error', () => resolve({ code: -1, signal: null }));
  });
  const ended = (stream: NodeJS.ReadableStream) => new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
  const pipes = Promise.all([ended(child.stdout!), ended(child.stderr!)]); // listening from the start
  const drained = exited
    .then(() => Promise.race([pipes, new Promise((r) => setTimeout(r, 5_000).unref())]))
    .then(() => new Promise<void>((resolve) => log.write('', () => resolve())));
  return { name, child, pid: child.pid!, expectedExit: false, exited, drained };
}

/** kill -9 of a whole process group we started. */
export async function killGroup(p: Supervised): Promise<void> {
  p.expectedExit = true;
  const tree = processTree(p.pid);
  try {
    process.kill(-p.pid, 'SIGKILL');
  } catch {
    // the group is gone
  }
  for (const pid of tree) signal(pid, 'SIGKILL');
  await p.exited;
  await waitGone(tree);
}

/** SIGTERM, then SIGKILL after a grace period. */
export async function stopGroup(p: Supervised, graceMs = 15_000): Promise<void> {
  p.expectedExit = true;
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  signal(p.pid, 'SIGTERM');
  const timer = setTimeout(() => void killGroup(p), graceMs);
  await p.exited;
  clearTimeout(timer);
  try {
    process.kill(-p.pid, 'SIGKILL'); // leftovers of the group (the esbuild helper)
  } catch {
    // nothing left
  }
}

/** The last lines of a log file, to explain an unexpected exit. */
export function tail(file: string, lines = 8): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** Replaces a worker's fault control file in one step (a worker never reads half of it). */
export async function writeControl(file: string, faults: string): Promise<void> {
  await writeFile(`${file}.tmp`, `${faults}\n`);
  await rename(`${file}.tmp`, file);
}
