/**
 * Ledger and saga throughput, printed as figures and as ratios against a baseline measured in the
 * same run on the same PostgreSQL: a plain single-shard transfer in one local transaction (what a
 * system without holds, idempotency or sharding would do). Nothing here asserts on time.
 *
 *   npm run bench                      # ledger benchmarks + end-to-end saga on the dev server
 *   BENCH_TRANSFERS=2000 BENCH_CONCURRENCY=16 npm run bench
 *   BENCH_E2E=0 npm run bench          # ledger only
 */
import { mkdtemp, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { evenSlotMap } from '../src/domain/slots.js';
import { stepKey } from '../src/domain/transfer.js';
import { TRANSFER_SEARCH_ATTRIBUTES } from '../src/domain/search-attributes.js';
import { startEmbeddedPostgres } from '../src/embedded/postgres.js';
import { Ledger } from '../src/ledger/ledger.js';
import { resolveDevServer } from '../src/temporal/binaries.js';
import { createTransferWorker } from '../src/worker.js';
import { startWithRetry } from '../src/temporal/start-retry.js';
import { policyFromEnv } from '../src/config.js';
import { TRANSFER_WORKFLOW } from '../workflows/definitions.js';

const N = Number(process.env.BENCH_TRANSFERS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const E2E_N = Number(process.env.BENCH_E2E_TRANSFERS ?? 200);
const ACCOUNTS = 64;

interface Figures { label: string; ops: number; seconds: number; p50: number; p99: number }

async function measure(label: string, count: number, concurrency: number, op: (i: number) => Promise<void>): Promise<Figures> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  let lastReport = started;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < count; i = next++) {
      const t0 = performance.now();
      await op(i);
      latencies.push(performance.now() - t0);
      if (performance.now() - lastReport > 2000) {
        lastReport = performance.now();
        process.stderr.write(`  ${label}: ${latencies.length}/${count}\n`);
      }
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  return { label, ops: count / seconds, seconds, p50: pct(0.5), p99: pct(0.99) };
}

function print(rows: Figures[], baseline: Figures): void {
  console.log(`\n${'benchmark'.padEnd(52)} ${'ops/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'vs baseline'.padStart(12)}`);
  for (const r of rows) {
    console.log(`${r.label.padEnd(52)} ${r.ops.toFixed(0).padStart(9)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${`${(r.ops / baseline.ops).toFixed(2)}x`.padStart(12)}`);
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'transfer-bench-'));
  await chmod(dir, 0o755);
  const pg = await startEmbeddedPostgres({ dir: join(dir, 'pg'), databases: ['bench_0', 'bench_1'], ephemeral: true });
  const ledger = Ledger.connect({ shardUrls: [pg.url('bench_0'), pg.url('bench_1')], slotMap: evenSlotMap(2), poolSize: CONCURRENCY + 4 });
  try {
    await ledger.migrate();
    const accounts = Array.from({ length: ACCOUNTS }, (_, i) => `acct-${i}`);
    for (const id of accounts) {
      await ledger.openAccount({ id, currency: 'USD' });
      await ledger.deposit({ key: `seed-${id}`, accountId: id, amount: '1000000000', currency: 'USD' });
    }
    const pair = (i: number) => [accounts[i % ACCOUNTS]!, accounts[(i * 7 + 1) % ACCOUNTS]!] as const;
    console.log(`PostgreSQL ${pg.port}, 2 shards, ${ACCOUNTS} accounts, ${N} transfers per benchmark, concurrency ${CONCURRENCY}`);

    // Baseline: one local transaction moving money between two rows of one database.
    const shard0 = ledger.shards[0]!.pool;
    await shard0.query(`CREATE TABLE bench_plain (id text PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))`);
    await shard0.query(`INSERT INTO bench_plain SELECT 'acct-' || g, 1000000000 FROM generate_series(0, ${ACCOUNTS - 1}) g`);
    const baseline = await measure('baseline: one-transaction transfer, one database', N, CONCURRENCY, async (i) => {
      const [from, to] = pair(i);
      const client = await shard0.connect();
      try {
        await client.query('BEGIN');
        const [a, b] = [from, to].sort();
        await client.query('SELECT 1 FROM bench_plain WHERE id IN ($1, $2) ORDER BY id FOR UPDATE', [a, b]);
        await client.query('UPDATE bench_plain SET balance = balance - 1 WHERE id = $1', [from]);
        await client.query('UPDATE bench_plain SET balance = balance + 1 WHERE id = $1', [to]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      } finally {
        client.release();
      }
    });

    const saga = async (prefix: string, i: number) => {
      const [from, to] = pair(i);
      const id = `${prefix}-${i}`;
      const d = await ledger.reserve({ key: stepKey(id, 'reserve-debit'), transferId: id, accountId: from, side: 'debit', amount: '1', currency: 'USD', ttlMs: 600_000, counterparty: to });
      const c = await ledger.reserve({ key: stepKey(id, 'reserve-credit'), transferId: id, accountId: to, side: 'credit', amount: '1', currency: 'USD', ttlMs: 600_000, counterparty: from });
      await ledger.post({ key: stepKey(id, 'post-debit'), holdKey: d.hold.key, accountId: from });
      await ledger.post({ key: stepKey(id, 'post-credit'), holdKey: c.hold.key, accountId: to });
    };
    const steps = await measure('ledger saga: 4 idempotent steps over 2 shards', N, CONCURRENCY, (i) => saga('t', i));
    const replay = await measure('ledger saga replayed (every key already applied)', N, CONCURRENCY, (i) => saga('t', i));
    const rows = [baseline, steps, replay];

    const report = await ledger.verify();
    console.log(`verify after ledger benchmarks: ${report.ok ? 'ok' : JSON.stringify(report.violations.slice(0, 3))}`);

    if (process.env.BENCH_E2E !== '0') {
      Runtime.install({ logger: new DefaultLogger('ERROR') });
      const server = await resolveDevServer({ progress: (l) => process.stderr.write(`${l}\n`) });
      const env = await startWithRetry('dev server', () => TestWorkflowEnvironment.createLocal({ server: { executable: server.executable, ip: '127.0.0.1', searchAttributes: TRANSFER_SEARCH_ATTRIBUTES, log: { format: 'json', level: 'error' } } }));
      try {
        const worker = await createTransferWorker({ connection: env.nativeConnection, taskQueue: 'bench', ledger, policy: policyFromEnv({}) });
        await worker.runUntil(async () => {
          const e2e = await measure(`saga workflow end to end (dev server), ${E2E_N} transfers`, E2E_N, CONCURRENCY * 2, async (i) => {
            const [from, to] = pair(i);
            const result = await env.client.workflow.execute(TRANSFER_WORKFLOW, { taskQueue: 'bench', workflowId: `e2e-${Date.now()}-${i}`, args: [{ from, to, amount: '1', currency: 'USD' }] });
            if ((result as { status: string }).status !== 'COMPLETED') throw new Error(`transfer ${i} ended ${(result as { status: string }).status}`);
          });
          rows.push(e2e);
        });
      } finally {
        await env.teardown();
      }
    }
    print(rows, baseline);
    const memory = process.memoryUsage();
    console.log(`\nbenchmark process memory: rss ${(memory.rss / 2 ** 20).toFixed(0)} MiB, heap used ${(memory.heapUsed / 2 ** 20).toFixed(0)} MiB`);
    const final = await ledger.verify();
    console.log(`verify at the end: ${final.ok ? 'ok' : `${final.violations.length} violation(s)`}`);
  } finally {
    await ledger.close();
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
