import type { Command } from 'commander';
import type pg from 'pg';
import { CliError, emit, EXIT, type GlobalOptions } from '../output.js';
import { interrupted } from '../signals.js';

// pg and the dispatcher load only when a command runs (`--help` stays fast).
const load = {
  db: () => import('../../messaging/webhooks/db.js'),
  endpoints: () => import('../../messaging/webhooks/endpoints.js'),
  deliveries: () => import('../../messaging/webhooks/deliveries.js'),
  targets: () => import('../../messaging/webhooks/targets.js'),
  guard: () => import('../../messaging/webhooks/url-guard.js'),
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkUuid(id: string, what: string): string {
  if (!UUID.test(id)) throw new CliError(`${what} ${JSON.stringify(id)} is not a uuid`, EXIT.USAGE, 'INVALID_INPUT');
  return id;
}

function checkDate(text: string | undefined, what: string): Date | undefined {
  if (text === undefined) return undefined;
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) throw new CliError(`${what} must be an ISO date/time (got ${JSON.stringify(text)})`, EXIT.USAGE, 'INVALID_INPUT');
  return d;
}

async function withMessages<T>(fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const { messagingTargets } = await load.targets();
  const { messagesUrl } = await messagingTargets();
  if (!messagesUrl) throw new CliError('no messages database: start the stack with `npx transfer up` or set MESSAGES_DATABASE_URL', EXIT.UNREACHABLE, 'UNREACHABLE');
  const { migrateMessages, resilientPool } = await load.db();
  const pool = resilientPool(messagesUrl, 2);
  try {
    await migrateMessages(pool);
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

/** Operator errors from the messaging layer (a bad URL, an unknown endpoint) are bad usage: exit 2. */
async function usage<T>(fn: () => Promise<T>): Promise<T> {
  const { WebhookUrlError } = await load.guard();
  try {
    return await fn();
  } catch (error) {
    if (error instanceof WebhookUrlError || /^(no webhook endpoint|event type|give )/.test((error as Error).message)) throw new CliError((error as Error).message, EXIT.USAGE, 'INVALID_INPUT');
    throw error;
  }
}

export function registerWebhookCommands(program: Command, globals: () => GlobalOptions): void {
  const webhook = program.command('webhook').description('subscribers to ledger events: signed webhooks with retries');

  webhook
    .command('add <url>')
    .description('subscribe a URL; prints its signing secret once (keep it: it is not shown again)')
    .requiredOption('--events <types...>', 'event types: "*", "transfer.*", "account.deposited", …')
    .option('--description <text>', 'a note for operators', '')
    .action(async (url: string, opts: { events: string[]; description: string }) => {
      const { addEndpoint, checkEventTypes } = await load.endpoints();
      const { checkWebhookUrl } = await load.guard();
      // Checked before any connection: bad input touches nothing.
      await usage(async () => {
        await checkWebhookUrl(url);
        checkEventTypes(opts.events);
      });
      const { endpoint, secret } = await withMessages((pool) => usage(() => addEndpoint(pool, { url, eventTypes: opts.events, description: opts.description })));
      emit(globals(), { endpoint, secret }, () => `added ${endpoint.id} → ${endpoint.url} (${endpoint.eventTypes.join(', ')})\nsigning secret (shown once): ${secret}`);
    });

  webhook
    .command('list')
    .description('subscribers, their filters and whether they are enabled (secrets are never listed)')
    .action(async () => {
      const { listEndpoints } = await load.endpoints();
      const items = await withMessages(listEndpoints);
      emit(globals(), { items }, () => items.length === 0 ? 'no webhook endpoints' : items.map((e) =>
        `${e.id}  ${e.enabled ? 'enabled ' : 'DISABLED'}  ${e.url}  [${e.eventTypes.join(', ')}]${e.disabledReason ? `  (${e.disabledReason})` : ''}${e.rotating ? '  (previous secret still signing)' : ''}`).join('\n'));
    });

  for (const [name, enabled] of [['disable', false], ['enable', true]] as const) {
    webhook
      .command(`${name} <endpoint-id>`)
      .description(enabled ? 'resume deliveries to an endpoint (waiting ones are sent; missed events: `replay`)' : 'stop deliveries to an endpoint')
      .option('--reason <text>', 'why (shown by list)')
      .action(async (id: string, opts: { reason?: string }) => {
        checkUuid(id, 'endpoint id');
        const { setEnabled } = await load.endpoints();
        const endpoint = await withMessages((pool) => usage(() => setEnabled(pool, id, enabled, opts.reason)));
        emit(globals(), { endpoint }, () => `${endpoint.id} ${enabled ? 'enabled' : 'disabled'}`);
      });
  }

  webhook
    .command('rotate-secret <endpoint-id>')
    .description('a new signing secret (printed once); the previous one keeps signing during --grace')
    .option('--grace <seconds>', 'how long the previous secret keeps signing', '86400')
    .action(async (id: string, opts: { grace: string }) => {
      checkUuid(id, 'endpoint id');
      const grace = Number(opts.grace);
      if (!/^[0-9]+$/.test(opts.grace) || grace > 30 * 86400) throw new CliError('--grace must be 0 to 2592000 seconds', EXIT.USAGE, 'INVALID_INPUT');
      const { rotateSecret } = await load.endpoints();
      const { endpoint, secret } = await withMessages((pool) => usage(() => rotateSecret(pool, id, grace * 1000)));
      emit(globals(), { endpoint, secret }, () => `new signing secret for ${endpoint.id} (shown once): ${secret}\nthe previous secret keeps signing for ${grace} s`);
    });

  webhook
    .command('deliveries')
    .description('deliveries with their attempts, HTTP statuses and latencies, newest first')
    .option('--endpoint <id>', 'only this endpoint')
    .option('--status <status>', 'pending, delivered or dead')
    .option('--event <id>', 'only this event')
    .option('--limit <n>', 'at most this many', '50')
    .action(async (opts: { endpoint?: string; status?: string; event?: string; limit: string }) => {
      if (opts.endpoint) checkUuid(opts.endpoint, 'endpoint id');
      if (opts.event) checkUuid(opts.event, 'event id');
      if (opts.status && !['pending', 'delivered', 'dead'].includes(opts.status)) throw new CliError('--status must be pending, delivered or dead', EXIT.USAGE, 'INVALID_INPUT');
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new CliError('--limit must be 1 to 10000', EXIT.USAGE, 'INVALID_INPUT');
      const { listDeliveries } = await load.deliveries();
      const items = await withMessages((pool) => listDeliveries(pool, { limit, ...(opts.endpoint ? { endpointId: opts.endpoint } : {}), ...(opts.status ? { status: opts.status } : {}), ...(opts.event ? { eventId: opts.event } : {}) }));
      emit(globals(), { items }, () => items.length === 0 ? 'no deliveries' : items.map((d) =>
        `${d.eventId} ${d.eventType} → ${d.endpointId}  ${d.status}  ${d.attempts} attempt(s)` +
        d.history.map((a) => `\n    #${a.attempt} ${a.at}  ${a.httpStatus ?? '-'}  ${a.latencyMs} ms${a.error ? `  ${a.error}` : ''}`).join('')).join('\n'));
    });

  webhook
    .command('replay')
    .description('send events again: one event, a time range (read again from the shards), or every dead delivery')
    .option('--event <id>', 'one event')
    .option('--since <time>', 'events created at or after (ISO)')
    .option('--until <time>', 'events created before (ISO)')
    .option('--dead', 'every dead delivery')
    .option('--endpoint <id>', 'only to this endpoint')
    .action(async (opts: { event?: string; since?: string; until?: string; dead?: boolean; endpoint?: string }) => {
      if (opts.event) checkUuid(opts.event, 'event id');
      if (opts.endpoint) checkUuid(opts.endpoint, 'endpoint id');
      const since = checkDate(opts.since, '--since');
      const until = checkDate(opts.until, '--until');
      const byEvents = Boolean(opts.event || since || until);
      if (byEvents === Boolean(opts.dead)) throw new CliError('give --dead, or --event / --since / --until', EXIT.USAGE, 'USAGE');
      if (opts.dead) {
        const { replayDead } = await load.deliveries();
        const deliveries = await withMessages((pool) => replayDead(pool, opts.endpoint));
        return emit(globals(), { deliveries }, () => `${deliveries} dead deliver${deliveries === 1 ? 'y' : 'ies'} due again`);
      }
      const { messagingTargets } = await load.targets();
      const { shardUrls } = await messagingTargets();
      if (!shardUrls) throw new CliError('no ledger shards: start the stack or set LEDGER_SHARD_URLS', EXIT.UNREACHABLE, 'UNREACHABLE');
      const [{ replayEvents }, { resilientPool }] = await Promise.all([import('../../messaging/webhooks/replay.js'), load.db()]);
      const shards = shardUrls.map((u) => resilientPool(u, 1));
      try {
        const result = await withMessages((pool) => replayEvents(pool, shards, { ...(opts.event ? { eventId: opts.event } : {}), ...(since ? { since } : {}), ...(until ? { until } : {}), ...(opts.endpoint ? { endpointId: opts.endpoint } : {}) }));
        emit(globals(), result, () => `${result.events} event(s) found; ${result.deliveries} deliver${result.deliveries === 1 ? 'y' : 'ies'} due again`);
      } finally {
        await Promise.allSettled(shards.map((s) => s.end()));
      }
    });
}


export function registerMessagingServiceCommands(program: Command): void {
  program
    .command('dispatch')
    .description('deliver ledger events to webhook subscribers until Ctrl-C (several may run at once)')
    .action(async () => {
      const { messagingTargets } = await load.targets();
      const { messagesUrl, shardUrls } = await messagingTargets();
      if (!messagesUrl || !shardUrls) throw new CliError('set MESSAGES_DATABASE_URL and LEDGER_SHARD_URLS, or start the stack with `npx transfer up`', EXIT.USAGE, 'NOT_CONFIGURED');
      const [{ createLogger }, { startDispatcherService }] = await Promise.all([import('../../observability/logger.js'), import('../../messaging/webhooks/service.js')]);
      const logger = createLogger('transfer-dispatch');
      const service = await startDispatcherService({ messagesUrl, shardUrls, logger });
      const signal = await interrupted();
      logger.info({ signal }, 'shutting down');
      await service.stop();
    });

  program
    .command('receiver')
    .description('run the reference "fund account" receiver (verifies signatures, applies each event once)')
    .option('--port <port>', 'port on 127.0.0.1 (0: any free port)', '0')
    .action(async (opts: { port: string }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be a port number (got ${opts.port})`, EXIT.USAGE, 'INVALID_INPUT');
      const { messagingTargets } = await load.targets();
      const { fundAccountUrl, messagesUrl } = await messagingTargets();
      if (!fundAccountUrl) throw new CliError('set FUND_ACCOUNT_DATABASE_URL, or start the stack with `npx transfer up`', EXIT.USAGE, 'NOT_CONFIGURED');
      // Secrets come from the environment (never argv: other users can read it in ps), or the receiver
      // subscribes itself through the messages database.
      const fromEnv = (process.env.WEBHOOK_SECRETS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      if (fromEnv.length === 0 && (!messagesUrl || port === 0)) throw new CliError('set WEBHOOK_SECRETS, or give --port and a messages database so the receiver can subscribe itself', EXIT.USAGE, 'NOT_CONFIGURED');
      const { startFundAccountReceiver } = await import('../../receiver/fund-account.js');
      const secrets = fromEnv.length > 0 ? fromEnv : await (await import('../../messaging/webhooks/service.js')).registerReceiver(messagesUrl!, `http://127.0.0.1:${port}/webhooks`);
      const receiver = await startFundAccountReceiver({ databaseUrl: fundAccountUrl, secrets, port, log: (l) => process.stderr.write(`${l}\n`) });
      process.stderr.write(`fund-account receiver listening on ${receiver.url}\n`);
      await interrupted();
      await receiver.close();
    });
}
