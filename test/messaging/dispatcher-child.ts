/**
 * A dispatcher process for the crash test: it sends, and once a receiver has answered it prints
 * `answered <event id>` and stops before recording the answer, waiting to be killed.
 */
import { resilientPool } from '../../src/messaging/webhooks/db.js';
import { WebhookDispatcher } from '../../src/messaging/webhooks/dispatcher.js';

const messages = resilientPool(process.env.MESSAGES_URL!, 4);
const shards = process.env.SHARD_URLS!.split(',').map((u) => resilientPool(u, 2));
const dispatcher = new WebhookDispatcher({
  messages,
  shards,
  settings: { timeoutMs: 1000, leaseMarginMs: 500, pollMs: 20, concurrency: 1, batchSize: 1, retryScheduleMs: [50, 50, 50] },
  afterSend: async (delivery, result) => {
    process.stdout.write(`answered ${delivery.eventId} ${result.status ?? result.error}\n`);
    await new Promise(() => undefined);
  },
});
dispatcher.start();
// Bounded: if the test never kills us, end on our own.
setTimeout(() => process.exit(3), 60_000).unref();
