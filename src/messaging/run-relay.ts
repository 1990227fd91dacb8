import type { Client } from '@temporalio/client';
import { createPool } from '../db/transaction.js';
import { LogRelay, slotLag } from './relay-log.js';
import { PollRelay } from './relay-poll.js';
import { followOutcomes, installRequestTable } from './requests.js';
import { installWalletSchema } from './wallet-example.js';

export type RelayMode = 'poll' | 'log';

export interface RunningRelay {
  mode: RelayMode;
  handled(): number;
  stop(): Promise<void>;
}

export interface RunRelayOptions {
  url: string;
  client: Client;
  taskQueue: string;
  mode?: RelayMode;
  log: (line: string) => void;
  /** Also create the example wallet service's own table (the embedded stack's demo). */
  example?: boolean;
  onSlotLag?: (bytes: number) => void;
  /** Poll mode: fallback interval and whether to LISTEN. */
  intervalMs?: number;
  notify?: boolean;
  /** Log mode: replication slot. */
  slot?: string;
}

/** A relay with its outcome follower: what `transfer relay` runs, and `up` for the example database. */
export async function runRelay(options: RunRelayOptions): Promise<RunningRelay> {
  const mode = options.mode ?? 'poll';
  const pool = createPool(options.url, 4);
  await installRequestTable(pool);
  if (options.example) await installWalletSchema(pool);
  const common = { pool, url: options.url, client: options.client, taskQueue: options.taskQueue, log: options.log };
  const relay = mode === 'log'
    ? new LogRelay({ ...common, ...(options.slot ? { slot: options.slot } : {}) })
    : new PollRelay({ ...common, intervalMs: options.intervalMs ?? 1_000, ...(options.notify === false ? { notify: false } : {}) });
  await relay.start();
  let following = Promise.resolve();
  const timer = setInterval(() => {
    following = following
      .then(async () => {
        await followOutcomes(pool, options.client);
        // WAL the slot keeps for us: it grows while the relay is behind (capped by max_slot_wal_keep_size).
        if (mode === 'log' && options.onSlotLag) options.onSlotLag((await slotLag(pool)).lagBytes);
      })
      .then(() => undefined, (e: Error) => options.log(`relay outcomes: ${e.message}`));
  }, 1_000);
  return {
    mode,
    handled: () => relay.handled,
    async stop() {
      clearInterval(timer);
      await following;
      await relay.stop();
      await pool.end();
    },
  };
}
