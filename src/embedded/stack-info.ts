import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dataDir } from './paths.js';

/*
 * Where the running embedded stack listens (stack.json), without the stack's own heavy imports
 * (Temporal testing, embedded PostgreSQL): every CLI command run from a second terminal reads it.
 */

export interface StackInfo {
  pid: number;
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
