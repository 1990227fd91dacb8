/**
 * Webhook delivery throughput and latency to the reference fund-account receiver, on a private
 * embedded PostgreSQL (fsync off): two shards, the messages database and the receiver's database.
 * Prints figures; asserts nothing.
 *
 *   npm run bench:webhooks
 *   BENCH_WEBHOOKS=5000 BENCH_WEBHOOK_RATE=500 BENCH_WEBHOOK_SECONDS=5 WEBHOOK_CONCURRENCY=16 npm run bench:webhooks
 *
 * 1. burst: BENCH_WEBHOOKS events already committed, then the dispatcher starts; deliveries/s from
 *    its start until the last one is recorded delivered, and the HTTP attempt latency p50/p99;
 * 2. paced: events committed at BENCH_WEBHOOK_RATE per second for BENCH_WEBHOOK_SECONDS while the
 *    dispatcher runs; latency from the event's commit to the receiver's commit of its effect.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { migrate } from '../src/db/migrate.js';
import { startEmbeddedPostgres } from '../src/embedded/postgres.js';
import { settingsFromEnv, type DispatcherSettings } from '../src/messaging/webhooks/config.js';
import { migrateMessages, resilientPool } from '../src/messaging/webhooks/db.js';
import { WebhookDispatcher } from '../src/messaging/webhooks/dispatcher.js';
import { addEndpoint } from '../src/messaging/webhooks/endpoints.js';
import { startFundAccountReceiver } from '../src/receiver/fund-account.js';
import { createLogger } from '../src/observability/logger.js';

const BURST = Number(process.env.BENCH_WEBHOOKS ?? 5000);
const RATE = Number(process.env.BENCH_WEBHOOK_RATE ?? 500);
const SECONDS = Number(process.env.BENCH_WEBHOOK_SECONDS ?? 5);

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/** Events as the ledger writes them, many per statement (the bench measures delivery, not the ledger). */
async function insertEvents(shard: pg.Pool, count: number, tag: string): Promise<void> {
  await shard.query(
    `INSERT INTO ledger_events (aggregatetype, aggregateid, type, payload)
     SELECT 'transfer', $1::text || '-' || i, 'transfer.credit_posted',
            jsonb_build_object('transferId', $1::text || '-' || i, 'account', 'fund-' || (i % 50), 'side', 'credit', 'amount', (100 + i)::text,
                               'currency', 'USD', 'key', $1::text || '-' || i || ':post-credit', 'sequence', 4, 'at', now())
     FROM generate_series(1, $2::int) AS i`,
    [tag, count],
  );
}

async function delivered(messages: pg.Pool): Promise<number> {
  return Number((await messages.query<{ n: string }>(`SELECT count(*)::text AS n FROM webhook_deliveries WHERE status = 'delivered'`)).rows[0]!.n);
}

/** The cheapest honest receiver: reads the raw body, verifies the signature, answers 204. */
async function verifyOnlyReceiver(secret: string): Promise<{ url: string; close(): Promise<void> }> {
  const verifier = new Webhook(secret);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        verifier.verify(Buffer.concat(chunks), req.headers as Record<string, string>);
        res.writeHead(204).end();
      } catch {
        res.writeHead(401).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}

interface Row { label: string; rate: number; p50: number; p99: number }

async function burst(messages: pg.Pool, shards: pg.Pool[], settings: DispatcherSettings, tag: string): Promise<Row> {
  const base = await delivered(messages);
  await Promise.all(shards.map((s, i) => insertEvents(s, Math.floor(BURST / 2) + (i === 0 ? BURST % 2 : 0), `${tag}${i}`)));
  const dispatcher = new WebhookDispatcher({ messages, shards, settings, logger: createLogger('bench-webhooks', { level: 'warn' }) });
  const started = performance.now();
  dispatcher.start();
  const deadline = Date.now() + Number(process.env.BENCH_WEBHOOK_DEADLINE_S ?? 120) * 1000;
  while ((await delivered(messages)) - base < BURST && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - started) / 1000;
  await dispatcher.stop();
  const done = (await delivered(messages)) - base;
  const ms = (await messages.query<{ ms: number }>(`SELECT last_latency_ms AS ms FROM webhook_deliveries WHERE status = 'delivered' AND body LIKE $1::text ORDER BY 1`, [`%"${tag}%`])).rows.map((r) => r.ms);
  return { label: `burst of ${BURST} (${done} delivered in ${seconds.toFixed(2)} s) → ${tag}; HTTP attempt`, rate: done / seconds, p50: percentile(ms, 50), p99: percentile(ms, 99) };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-webhooks-'));
  await chmod(dir, 0o755);
  const server = await startEmbeddedPostgres({ dir: join(dir, 'pg'), databases: ['wh_shard_0', 'wh_shard_1', 'wh_messages', 'wh_fund'], ephemeral: true });
  const pools: pg.Pool[] = [];
  let receiver: Awaited<ReturnType<typeof startFundAccountReceiver>> | undefined;
  let plain: Awaited<ReturnType<typeof verifyOnlyReceiver>> | undefined;
  let dispatcher: WebhookDispatcher | undefined;
  try {
    const shards = [0, 1].map((i) => resilientPool(server.url(`wh_shard_${i}`), 4));
    const messages = resilientPool(server.url('wh_messages'), 24);
    pools.push(...shards, messages);
    for (const shard of shards) await migrate(shard);
    await migrateMessages(messages);
    const settings = { ...settingsFromEnv(), pollMs: Number(process.env.WEBHOOK_POLL_MS ?? 20) };
    const rows: Row[] = [];

    // 1. The dispatcher's own ceiling: a receiver that only verifies.
    const first = await addEndpoint(messages, { url: 'http://127.0.0.1:9/placeholder', eventTypes: ['transfer.credit_posted'] });
    plain = await verifyOnlyReceiver(first.secret);
    await messages.query('UPDATE webhook_endpoints SET url = $2::text WHERE id = $1::uuid', [first.endpoint.id, plain.url]);
    rows.push(await burst(messages, shards, settings, 'verify-only'));
    await messages.query('UPDATE webhook_endpoints SET enabled = false WHERE id = $1::uuid', [first.endpoint.id]);

    // 2. The reference receiver: each event a transaction of its own (de-duplication + credit).
    const { endpoint, secret } = await addEndpoint(messages, { url: 'http://127.0.0.1:9/placeholder', eventTypes: ['transfer.credit_posted'] });
    receiver = await startFundAccountReceiver({ databaseUrl: server.url('wh_fund'), secrets: [secret] });
    await messages.query('UPDATE webhook_endpoints SET url = $2::text WHERE id = $1::uuid', [endpoint.id, receiver.url]);
    rows.push(await burst(messages, shards, settings, 'fund-account'));

    // 3. Paced: a steady stream, latency from commit to the receiver's effect.
    dispatcher = new WebhookDispatcher({ messages, shards, settings });
    dispatcher.start();
    const base = await delivered(messages);
    const perTick = Math.max(1, Math.round(RATE / 20));
    const ticks = SECONDS * 20;
    for (let t = 0; t < ticks; t++) {
      const tickStart = performance.now();
      await insertEvents(shards[t % 2]!, perTick, `paced${t}-`);
      await new Promise((r) => setTimeout(r, Math.max(0, 50 - (performance.now() - tickStart))));
    }
    const pacedTotal = perTick * ticks;
    const pacedDeadline = Date.now() + 120_000;
    while ((await delivered(messages)) - base < pacedTotal && Date.now() < pacedDeadline) await new Promise((r) => setTimeout(r, 20));
    // Both timestamps come from the same PostgreSQL server's clock.
    const e2e = (await messages.query<{ ms: number }>(
      `SELECT extract(epoch FROM (delivered_at - event_created_at)) * 1000 AS ms FROM webhook_deliveries WHERE status = 'delivered' AND body LIKE '%"paced%' ORDER BY 1`)).rows.map((r) => Number(r.ms));
    rows.push({ label: `paced ${RATE}/s for ${SECONDS} s → fund-account (${e2e.length}/${pacedTotal}); commit → recorded`, rate: RATE, p50: percentile(e2e, 50), p99: percentile(e2e, 99) });

    const balances = (await receiver.pool.query<{ credits: string }>('SELECT sum(credits)::text AS credits FROM fund_balances')).rows[0]!.credits;
    process.stdout.write(`\nwebhook delivery (concurrency ${settings.concurrency}, batch ${settings.batchSize}, timeout ${settings.timeoutMs} ms)\n`);
    process.stdout.write(`${'benchmark'.padEnd(78)}${'deliv/s'.padStart(8)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}\n`);
    for (const r of rows) process.stdout.write(`${r.label.padEnd(78)}${r.rate.toFixed(0).padStart(8)}${r.p50.toFixed(1).padStart(9)}${r.p99.toFixed(1).padStart(9)}\n`);
    const failed = (await messages.query<{ n: string }>('SELECT count(*)::text AS n FROM webhook_attempts WHERE error IS NOT NULL')).rows[0]!.n;
    process.stdout.write(`failed attempts: ${failed}; fund-account credits applied: ${balances} (expected ${BURST + pacedTotal}, each once)\n`);
  } finally {
    await dispatcher?.stop();
    await receiver?.close();
    await plain?.close();
    await Promise.allSettled(pools.map((p) => p.end()));
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
