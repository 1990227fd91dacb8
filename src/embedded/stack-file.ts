import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dataDir } from './paths.js';

/**
 * Where a running embedded stack says it listens (stack.json), readable without loading the
 * Temporal SDK or PostgreSQL: a second `up`, `reset` and `env` consult it before anything heavy.
 */
export interface StackInfo {
  pid: number;
  /** `dev` or `server` (src/embedded/stack.ts); absent in stack.json files written before profiles existed: `dev`. */
  profile?: 'dev' | 'server';
  startedAt: string;
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  webUi: string;
  shardUrls: string[];
  slotMap: string;
  metricsPort?: number;
  /** Webhook subscribers and deliveries (MESSAGES_DATABASE_URL when external). */
  messagesUrl?: string;
  /** The reference receiver's own database (FUND_ACCOUNT_DATABASE_URL when external). */
  fundAccountUrl?: string;
  /** The example wallet service's database, where `up` relays transfer requests from. */
  producerUrl?: string;
  /** The HTTP API `up` serves (absent with `--api-port 0`): `transfer status` asks it instead of loading the Temporal SDK. */
  apiUrl?: string;
}

export function stackDir(): string {
  return join(dataDir(), 'embedded');
}

export function stackFile(): string {
  return join(stackDir(), 'stack.json');
}

/** The running stack's addresses, if its process is still alive. */
export async function readStackInfo(): Promise<StackInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(stackFile(), 'utf8')) as StackInfo;
    process.kill(info.pid, 0);
    return info;
  } catch {
    return undefined;
  }
}

/** Adds the HTTP API's address to the running stack's stack.json (written before the API listened). */
export async function recordApiUrl(apiUrl: string): Promise<void> {
  const info = JSON.parse(await readFile(stackFile(), 'utf8')) as StackInfo;
  await writeFile(stackFile(), JSON.stringify({ ...info, apiUrl }, null, 2), { mode: 0o600 });
}
