import type { Logger } from '../../observability/logger.js';
import { freePort } from '../../embedded/ports.js';
import { startFundAccountReceiver } from '../../receiver/fund-account.js';
import { registerReceiver, startDispatcherService } from './service.js';

/**
 * What `transfer up` adds for outbound messages: the webhook dispatcher, and the reference
 * fund-account receiver subscribed to `transfer.credit_posted`. Returns undefined (nothing started)
 * when there is no messages database (external shards without MESSAGES_DATABASE_URL).
 */
export async function startMessagingForUp(input: { messagesUrl?: string; fundAccountUrl?: string; shardUrls: string[]; logger: Logger; say: (line: string) => void }): Promise<{ stop(): Promise<void> } | undefined> {
  if (!input.messagesUrl) return undefined;
  const dispatcher = await startDispatcherService({ messagesUrl: input.messagesUrl, shardUrls: input.shardUrls, logger: input.logger });
  let receiver: Awaited<ReturnType<typeof startFundAccountReceiver>> | undefined;
  try {
    if (input.fundAccountUrl) {
      const port = await freePort(8787);
      const secrets = await registerReceiver(input.messagesUrl, `http://127.0.0.1:${port}/webhooks`);
      receiver = await startFundAccountReceiver({ databaseUrl: input.fundAccountUrl, secrets, port, log: (l) => input.logger.warn({}, l) });
      input.say(`webhook dispatcher running; fund-account receiver on ${receiver.url}`);
    } else {
      input.say('webhook dispatcher running');
    }
  } catch (error) {
    await dispatcher.stop();
    throw error;
  }
  return {
    async stop() {
      await receiver?.close().catch(() => undefined);
      await dispatcher.stop();
    },
  };
}
