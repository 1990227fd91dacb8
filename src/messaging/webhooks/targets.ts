import { ledgerConfig } from '../../config.js';
import type { StackInfo } from '../../embedded/stack-file.js';

/**
 * Where the webhook commands find their databases: environment variables first (an external
 * deployment), otherwise the embedded stack's stack.json.
 *
 *   MESSAGES_DATABASE_URL      the dispatcher's database (endpoints, deliveries, cursors)
 *   FUND_ACCOUNT_DATABASE_URL  the reference receiver's database
 *   LEDGER_SHARD_URLS          the shards whose ledger_events are delivered
 */
export interface MessagingTargets {
  messagesUrl?: string;
  fundAccountUrl?: string;
  shardUrls?: string[];
}

export async function messagingTargets(env: NodeJS.ProcessEnv = process.env): Promise<MessagingTargets> {
  let stack: StackInfo | undefined;
  if (!env.MESSAGES_DATABASE_URL || !env.FUND_ACCOUNT_DATABASE_URL || !ledgerConfig(env)) {
    const { readStackInfo } = await import('../../embedded/stack-file.js');
    stack = await readStackInfo();
  }
  const messagesUrl = env.MESSAGES_DATABASE_URL || stack?.messagesUrl;
  const fundAccountUrl = env.FUND_ACCOUNT_DATABASE_URL || stack?.fundAccountUrl;
  const shardUrls = ledgerConfig(env)?.shardUrls ?? stack?.shardUrls;
  return { ...(messagesUrl ? { messagesUrl } : {}), ...(fundAccountUrl ? { fundAccountUrl } : {}), ...(shardUrls ? { shardUrls } : {}) };
}
