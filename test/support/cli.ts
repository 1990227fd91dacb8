import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Our CLI as users run it: `node bin/transfer.js …` in a child process, never imported. */
export const CLI = fileURLToPath(new URL('../../bin/transfer.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Variables that would point the CLI somewhere else than the test tells it to. */
const INHERITED_OUT = /^(LEDGER_|TEMPORAL_|DATABASE_URL$|METRICS_|TRANSFER_|NODE_OPTIONS$|VITEST)/;

export function cliEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !INHERITED_OUT.test(k)));
  return { ...base, ...env };
}

export interface CliResult {
  args: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs one CLI command to its end (killed by its pid after `timeoutMs`). Never rejects on a non-zero exit. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      if (child.pid) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`transfer ${args.join(' ')}: no exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (process.env.CLI_TIMING) process.stderr.write(`[cli] ${Date.now() - started} ms ${args.join(' ')}\n`);
      resolve({ args, code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/**
 * Starts a CLI command that runs until stopped (`up`) with exactly the environment given: the child,
 * its exit with everything it printed, and what it printed so far.
 */
export function startCli(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }>; output: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
  return { child, done, output: () => stdout + stderr };
}

/** `--json` promises exactly one JSON object on stdout: parse it, failing loudly on anything else. */
export function parseJson<T = Record<string, unknown>>(result: CliResult): T {
  const lines = result.stdout.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== 1) throw new Error(`transfer ${result.args.join(' ')}: expected one JSON line on stdout, got ${lines.length}:\n${result.stdout}\nstderr: ${result.stderr}`);
  const value = JSON.parse(lines[0]!) as unknown;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`not a JSON object: ${lines[0]}`);
  return value as T;
}

/** Runs at most `limit` commands at once (two cores: a dozen Node processes at once only thrash). */
export async function runAll<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  });
  await Promise.all(lanes);
  return results;
}

/** Polls `probe` until it returns a value (not undefined) or the time is up; returns the last try. */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 300): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined || Date.now() >= deadline) return value;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface CliWorker {
  pid: number;
  /** Everything the worker wrote to stderr (its pino logs). */
  log(): string;
  /** SIGTERM to its own pid, then waits for the exit (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `transfer worker` in a child process; resolves once it logged "worker started". */
export async function startCliWorker(env: Record<string, string>, timeoutMs = 90_000, onOutput?: (output: string) => void): Promise<CliWorker> {
  const child: ChildProcess = spawn(process.execPath, [CLI, 'worker'], { cwd: ROOT, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const append = (d: string) => {
    output += d;
    onOutput?.(output);
  };
  child.stdout!.setEncoding('utf8').on('data', append);
  child.stderr!.setEncoding('utf8').on('data', append);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn the worker');
  const kill = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, signal);
  };
  const ready = await Promise.race([
    new Promise<boolean>((resolve) => {
      const check = () => (/"msg":"worker started"/.test(output) ? resolve(true) : undefined);
      child.stdout!.on('data', check);
      child.stderr!.on('data', check);
    }),
    exited.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs)),
  ]);
  if (!ready) {
    kill('SIGKILL');
    await exited;
    throw new Error(`worker did not start within ${timeoutMs} ms:\n${output.slice(-4000)}`);
  }
  return {
    pid,
    log: () => output,
    async stop(stopTimeoutMs = 30_000) {
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), stopTimeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
