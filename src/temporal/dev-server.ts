import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { isListening } from '../embedded/ports.js';
import type { SearchAttributeType } from '@temporalio/common';
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes.js';

/**
 * Runs `temporal server start-dev` as our own child: its output goes to a log file (stdout stays
 * ours: `--json` prints one object), it may take as long as a cold start needs, and it is stopped
 * by its own pid.
 */
export interface DevServerOptions {
  path: string;
  ip: string;
  port: number;
  uiPort: number;
  dbFilename: string;
  namespace: string;
  searchAttributes: SearchAttributeKey<SearchAttributeType>[];
  logFile: string;
  startTimeoutMs?: number;
  /** Start with DEV_SERVER_TUNING (default true); false gives the CLI's defaults (the benchmark's reference). */
  tuned?: boolean;
  /** Further `temporal server start-dev` arguments, appended as given (e.g. `--sqlite-pragma`, `--dynamic-config-value`). */
  extraArgs?: readonly string[];
}

/**
 * What the embedded stack runs the dev server with, each measured in `npm run bench`:
 * - SQLite in WAL mode with `synchronous=NORMAL`: a commit appends to the write-ahead log without
 *   an fsync of its own (the log is synced at checkpoints). A killed process loses nothing; after a
 *   power loss or kernel crash the file is consistent but may have lost the last commits before it.
 *   The ledger's idempotency keys make a forgotten step safe to run again; a forgotten start is the
 *   price, and the reason production runs a Temporal server on PostgreSQL instead.
 * - Eager activity execution and eager workflow start: a worker that completes a workflow task (or
 *   a client sharing the worker's connection that starts a workflow) gets the next task in the
 *   answer instead of through a poll.
 */
export const DEV_SERVER_TUNING: readonly string[] = [
  '--sqlite-pragma', 'journal_mode=wal',
  '--sqlite-pragma', 'synchronous=normal',
  '--dynamic-config-value', 'system.enableActivityEagerExecution=true',
  '--dynamic-config-value', 'system.enableEagerWorkflowStart=true',
];

export interface RunningDevServer {
  pid: number;
  address: string;
  stop(): Promise<void>;
}

const SA_TYPES: Record<string, string> = { KEYWORD: 'Keyword', INT: 'Int', TEXT: 'Text', BOOL: 'Bool', DOUBLE: 'Double', DATETIME: 'Datetime', KEYWORD_LIST: 'KeywordList' };

export async function startDevServer(options: DevServerOptions): Promise<RunningDevServer> {
  const args = [
    'server', 'start-dev',
    '--ip', options.ip, '--port', String(options.port), '--ui-port', String(options.uiPort),
    '--namespace', options.namespace, '--db-filename', options.dbFilename,
    '--log-format', 'json', '--log-level', 'warn',
    ...options.searchAttributes.flatMap((k) => ['--search-attribute', `${k.name}=${SA_TYPES[k.type] ?? k.type}`]),
    ...(options.tuned === false ? [] : DEV_SERVER_TUNING),
    ...(options.extraArgs ?? []),
  ];
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const child = spawn(options.path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const address = `${options.ip}:${options.port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the Temporal dev server exited (${child.exitCode}) during start; see ${options.logFile}`);
    if (await isListening(options.ip, options.port)) break;
    if (Date.now() > deadline) {
      await stop(child, exited);
      throw new Error(`the Temporal dev server did not listen on ${address} in time; see ${options.logFile}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { pid: child.pid!, address, stop: () => stop(child, exited) };
}


async function stop(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}
