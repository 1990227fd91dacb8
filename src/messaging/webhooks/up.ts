import type { Logger } from '../../observability/logger.js';
import { bindFreePort } from '../../embedded/ports.js';
import { fundBalances, startFundAccountReceiver } from '../../receiver/fund-account.js';
import { formatMoney } from '../../domain/money.js';
import { registerReceiver, startDispatcherService } from './service.js';

/**
 * What `transfer up` adds for outbound messages: the webhook dispatcher, and the reference
 * fund-account receiver subscribed to `transfer.credit_posted`. Returns undefined (nothing started)
 * when there is no messages database (external shards without MESSAGES_DATABASE_URL).
 */
export async function startMessagingForUp(input: { messagesUrl?: string; fundAccountUrl?: string; shardUrls: string[]; logger: Logger; say: (line: string) => void }): Promise<{ stop(): Promise<void>; demoReport(print: (line: string) => void, more?: () => Promise<number>): Promise<void> } | undefined> {
  if (!input.messagesUrl) return undefined;
  const dispatcher = await startDispatcherService({ messagesUrl: input.messagesUrl, shardUrls: input.shardUrls, logger: input.logger });
  let receiver: Awaited<ReturnType<typeof startFundAccountReceiver>> | undefined;
  let startReceiver: (() => Promise<Awaited<ReturnType<typeof startFundAccountReceiver>>>) | undefined;
  try {
    if (input.fundAccountUrl) {
      const databaseUrl = input.fundAccountUrl;
      const messagesUrl = input.messagesUrl;
      receiver = await bindFreePort(8787, [], async (port) => {
        const secrets = await registerReceiver(messagesUrl, `http://127.0.0.1:${port}/webhooks`);
        startReceiver = () => startFundAccountReceiver({ databaseUrl, secrets, port, log: (l) => input.logger.warn({}, l) });
        return startReceiver();
      });
      input.say(`webhook dispatcher running; fund-account receiver on ${receiver.url}`);
    } else {
      input.say('webhook dispatcher running');
    }
  } catch (error) {
    await dispatcher.stop();
    throw error;
  }
  return {
    /** After the demo: what reached the receiver (delivery is asynchronous: wait a little for it). */
    async demoReport(print, more) {
      if (!receiver) return;
      const deadline = Date.now() + 10_000;
      let balances = await fundBalances(receiver.pool);
      while (balances.length === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        balances = await fundBalances(receiver.pool);
      }
      print('\nWebhooks: the fund-account receiver applied each transfer.credit_posted once (its own table, fund_balances):');
      if (balances.length === 0) print('  nothing yet (see `npx transfer webhook deliveries`)');
      for (const b of balances) print(`  ${b.account}  ${formatMoney(BigInt(b.balance), b.currency)}  from ${b.credits} credit(s)`);
      if (!more || !startReceiver) return;
      // The receiver goes down; transfers go on; it comes back and catches up from the retries.
      const credits = (rows: typeof balances) => rows.reduce((n, b) => n + Number(b.credits), 0);
      const before = credits(balances);
      await receiver.close();
      receiver = undefined;
      print('\n  receiver stopped; more transfers complete while it is down…');
      const sent = await more();
      receiver = await startReceiver();
      print(`  receiver back after ${sent} transfer(s); waiting for the dispatcher's retries…`);
      const until = Date.now() + 30_000;
      balances = await fundBalances(receiver.pool);
      while (credits(balances) < before + sent && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 250));
        balances = await fundBalances(receiver.pool);
      }
      const applied = credits(balances) - before;
      print(`  caught up: ${applied} of ${sent} credit(s) applied${applied === sent ? ', none lost, none twice' : ' so far (the rest on the next retry: see `npx transfer webhook deliveries`)'}`);
      for (const b of balances) print(`  ${b.account}  ${formatMoney(BigInt(b.balance), b.currency)}  from ${b.credits} credit(s)`);
    },
    async stop() {
      await receiver?.close().catch(() => undefined);
      await dispatcher.stop();
    },
  };
}
