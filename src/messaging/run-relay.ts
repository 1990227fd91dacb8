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

/**
 * A relay with its outcome follower, as `up` runs it for the example wallet service's database
 * (TRANSFER_RELAY_MODE=log switches to the WAL-tailing relay).
 */
export async function runRelay(options: { url: string; client: Client; taskQueue: string; mode?: RelayMode; log: (line: string) => void; example?: boolean; onSlotLag?: (bytes: number) => void }): Promise<RunningRelay> {
  const mode = options.mode ?? 'poll';
  const pool = createPool(options.url, 4);
  await installRequestTable(pool);
  if (options.example) await installWalletSchema(pool);
  const common = { pool, url: options.url, client: options.client, taskQueue: options.taskQueue, log: options.log };
  const relay = mode === 'log' ? new LogRelay(common) : new PollRelay({ ...common, intervalMs: 1_000 });
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
