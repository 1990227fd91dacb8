import type { Logger } from '../../observability/logger.js';
import { settingsFromEnv } from './config.js';
import { migrateMessages, resilientPool } from './db.js';
import { WebhookDispatcher } from './dispatcher.js';
import { ensureEndpoint } from './endpoints.js';

/** The dispatcher as a service: its pools, its migrations, its loops; `stop` ends all three. */
export async function startDispatcherService(input: { messagesUrl: string; shardUrls: string[]; logger: Logger }): Promise<{ dispatcher: WebhookDispatcher; stop(): Promise<void> }> {
  const settings = settingsFromEnv();
  const onError = (error: Error) => input.logger.warn({ error: error.message }, 'idle database connection lost; the pool reconnects');
  const messages = resilientPool(input.messagesUrl, settings.concurrency + 4, onError);
  const shards = input.shardUrls.map((u) => resilientPool(u, 2, onError));
  try {
    await migrateMessages(messages);
  } catch (error) {
    await Promise.allSettled([messages.end(), ...shards.map((s) => s.end())]);
    throw error;
  }
  const dispatcher = new WebhookDispatcher({ messages, shards, settings, logger: input.logger });
  dispatcher.start();
  input.logger.info({ shards: shards.length, concurrency: settings.concurrency, timeoutMs: settings.timeoutMs, retryScheduleMs: settings.retryScheduleMs }, 'webhook dispatcher started');
  return {
    dispatcher,
    async stop() {
      await dispatcher.stop();
      await Promise.allSettled([messages.end(), ...shards.map((s) => s.end())]);
    },
  };
}

/** `up`'s receiver registers itself (one endpoint, re-pointed at its port on each start) and gets its secrets. */
export async function registerReceiver(messagesUrl: string, url: string): Promise<string[]> {
  const pool = resilientPool(messagesUrl, 1);
  try {
    await migrateMessages(pool);
    const { secrets } = await ensureEndpoint(pool, { url, eventTypes: ['transfer.credit_posted'], description: 'fund-account reference receiver' });
    return secrets;
  } finally {
    await pool.end();
  }
}
