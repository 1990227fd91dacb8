/**
 * The `server` group of `npm run bench`: the real transferWorkflow on the server profile's Temporal
 * server (src/temporal/server-profile.ts: v1.29.1, all four services in one process, on PostgreSQL),
 * driven by 1, 2 and 4 `transfer worker` child processes on one task queue over 2 ledger shards, and
 * by 2 workers over 4 ledger shards. Besides ops/s and latency it measures what a capacity model
 * needs, per completed transfer: Temporal state transitions and persistence requests (the server's
 * own Prometheus counters), commits, statements, WAL bytes and WAL flushes of Temporal's PostgreSQL
 * and of the ledger's, and CPU of every process. bench/README.md documents the rows; docs/scaling.md
 * turns the figures into a deployment for 1,000 and 10,000 transfers/s.
 *
 * Two PostgreSQL clusters, both durable (fsync and synchronous_commit on, as `transfer up` runs
 * them), both with pg_stat_statements loaded: one holds Temporal's databases (`temporal`,
 * `temporal_visibility`), the other the ledger shards of this group, so the costs of each side are
 * read apart (`transfer up --profile server` puts both in one cluster; a deployment separates them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Client, Connection } from '@temporalio/client';
import { startTransfer, transferResult } from '../src/client.js';
import { evenSlotMap } from '../src/domain/slots.js';
import { TRANSFER_SEARCH_ATTRIBUTES } from '../src/domain/search-attributes.js';
import { startEmbeddedPostgres, type RunningPostgres } from '../src/embedded/postgres.js';
import { ephemeralPort } from '../src/embedded/ports.js';
import { Ledger } from '../src/ledger/ledger.js';
import { resolveServerBinaries } from '../src/temporal/server-binaries.js';
import { historyShardsFromEnv, startTemporalServer, TEMPORAL_DATABASE, TEMPORAL_VISIBILITY_DATABASE, type RunningTemporalServer } from '../src/temporal/server-profile.js';
import { cpuMs, measure, round, row, treeCpuMs, type Measured, type Row } from './support.js';

export interface ServerGroupOptions {
  dir: string;
  quick: boolean;
  /** Workflows per row, and the time after which a row starts no more. */
  workflows: number;
  workflowSeconds: number;
  warmup: number;
  /** Transfers in flight (closed loop) in every row of the group. */
  concurrency: number;
  /** Name of the dev-server end-to-end row at the same concurrency (the 1-worker row's baseline). */
  devServerRow: string;
  stamp: string;
  say: (line: string) => void;
}

/** Per completed transfer, over one row (its warm-up excluded). */
export interface ServerCosts {
  temporal: {
    /** Sum of the history service's state_transition_count histogram, namespace default. */
    stateTransitions: number;
    /** persistence_requests, every operation of every service (reads included). */
    persistenceRequests: number;
    /** The writes among them (Create*, Update*, Append*, Complete*, Delete*, …), and by operation. */
    persistenceWrites: number;
    writesByOperation: Record<string, number>;
    /** visibility_persistence_requests (all are writes of the visibility store, or its reads by the client). */
    visibilityRequests: number;
    /**
     * Mean persistence_latency of the writes during the row, ms (not per transfer): a history shard
     * runs one persistence operation at a time, so this bounds what one shard can write per second.
     */
    writeLatencyMs: { all: number; byOperation: Record<string, number> };
  };
  /** Temporal's PostgreSQL cluster (temporal + temporal_visibility) and the ledger's. */
  postgresTemporal: PostgresCosts;
  postgresLedger: PostgresCosts & { roundTripsPerStep: number; commitsPerStep: number };
  /** CPU ms per transfer by process. */
  cpuMs: { temporal: number; workers: number[]; client: number; postgresTemporal: number; postgresLedger: number };
}

export interface PostgresCosts {
  /** pg_stat_database xact_commit of the databases of that side (read-only transactions included). */
  commits: number;
  /**
   * Transaction ids assigned in the cluster (pg_snapshot_xmax of the current snapshot): transactions
   * that wrote, plus subtransactions that wrote (a PL/pgSQL exception block that wrote counts too).
   */
  xids: number;
  /** pg_stat_statements calls: top-level statements, BEGIN/COMMIT and statements of deferred triggers included. */
  statements: number;
  /** The same without the deferred triggers' statements: what the clients sent, one round trip each. */
  roundTrips: number;
  /** pg_current_wal_lsn() difference (the whole cluster). */
  walBytes: number;
  /** pg_stat_wal wal_sync: WAL flushes to disk (the whole cluster): commits per flush = group commit. */
  walSyncs: number;
  /** The statements run most often, per transfer (JSON only). */
  topStatements: { calls: number; query: string }[];
}

/** A row of this group: the common fields plus the per-transfer costs. */
export type ServerRow = Row & { serverCosts?: ServerCosts; workers?: number; ledgerShards?: number; historyShards?: number };

export const SERVER_ROW = (workers: number, shards: number, c: number) => `server, ${workers} worker${workers === 1 ? '' : 's'}, ${shards} shards, c${c}`;

/** The ledger steps of one completed transfer: reserve debit, reserve credit, post debit, post credit. */
const STEPS_PER_TRANSFER = 4;
const ACCOUNTS = 64;
const PG_SETTINGS = { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'top', 'pg_stat_statements.max': '10000' };
const WRITE_OPERATION = /^(Create|Update|Append|Complete|RangeComplete|Delete|RangeDelete|Set|Put|ConflictResolve|Upsert|Insert|Record|Lock|Extend|Trim|ForkHistoryBranch)/;

export interface ServerGroupResult {
  rows: ServerRow[];
  /** `verify` of each ledger of the group after its rows. */
  verify: { shards: number; ok: boolean; violations: number }[];
}

export async function serverRows(o: ServerGroupOptions): Promise<ServerGroupResult> {
  const { say } = o;
  const rows: ServerRow[] = [];
  const verify: ServerGroupResult['verify'] = [];
  const binaries = await resolveServerBinaries({ progress: say });
  const ledgerDbs = { 2: ['srv2_0', 'srv2_1'], 4: ['srv4_0', 'srv4_1', 'srv4_2', 'srv4_3'] } as const;
  const shardSets: (2 | 4)[] = o.quick ? [2] : [2, 4];
  let pgT: RunningPostgres | undefined;
  let pgL: RunningPostgres | undefined;
  let server: RunningTemporalServer | undefined;
  let connection: Connection | undefined;
  const workers: WorkerChild[] = [];
  const ledgers = new Map<number, Ledger>();
  try {
    // Two ports chosen before either cluster binds one: they start at the same time.
    const portT = await ephemeralPort();
    let portL = await ephemeralPort();
    while (portL === portT) portL = await ephemeralPort();
    [pgT, pgL] = await Promise.all([
      startEmbeddedPostgres({ dir: join(o.dir, 'pg-temporal'), port: portT, databases: [], settings: PG_SETTINGS, log: say }),
      startEmbeddedPostgres({ dir: join(o.dir, 'pg-ledger'), port: portL, databases: shardSets.flatMap((n) => ledgerDbs[n]), settings: PG_SETTINGS, log: say }),
    ]);
    for (const p of [pgT, pgL]) await sql(p, 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const url = new URL(pgT.url('postgres'));
    const metricsPort = await ephemeralPort();
    const historyShards = historyShardsFromEnv();
    const pgTemporal = pgT;
    // Temporal's schema and start, and the ledgers' migrations and accounts, at the same time.
    const [started] = await Promise.all([
      startTemporalServer({
        binaries, dir: join(o.dir, 'temporal-server'), logFile: join(o.dir, 'temporal-server.log'),
        postgres: { host: '127.0.0.1', port: pgTemporal.port, user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) },
        port: await ephemeralPort(), namespace: 'default', searchAttributes: TRANSFER_SEARCH_ATTRIBUTES, historyShards,
        metricsAddress: `127.0.0.1:${metricsPort}`, avoidPorts: [pgL.port], progress: say,
      }),
      ...shardSets.map(async (n) => {
        const ledger = Ledger.connect({ shardUrls: ledgerDbs[n].map((db) => pgL!.url(db)), slotMap: evenSlotMap(n), poolSize: 8 });
        ledgers.set(n, ledger);
        await ledger.migrate();
        await Promise.all(Array.from({ length: ACCOUNTS }, async (_, i) => {
          await ledger.openAccount({ id: `acct-${i}`, currency: 'USD' });
          await ledger.deposit({ key: `seed-acct-${i}`, accountId: `acct-${i}`, amount: '1000000000000', currency: 'USD' });
        }));
      }),
    ]);
    server = started;
    say(`Temporal server ${server.address} (pid ${server.pid}, ${server.historyShards} history shards, metrics :${metricsPort}); PostgreSQL for Temporal ${pgT.port} (pid ${pgT.pid}), for the ledger ${pgL.port} (pid ${pgL.pid})`);
    connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection, namespace: 'default' });
    const env = (n: 2 | 4, taskQueue: string) => workerEnv(ledgerDbs[n].map((db) => pgL!.url(db)), server!.address, taskQueue);
    const pids = { temporal: server.pid, pgTemporal: pgT.pid, pgLedger: pgL.pid };
    const dbs = { temporal: [TEMPORAL_DATABASE, TEMPORAL_VISIBILITY_DATABASE], ledger: (n: 2 | 4) => [...ledgerDbs[n]] };
    const c = o.concurrency;

    const runRow = async (n: 2 | 4, taskQueue: string, baseline: string, notes: string): Promise<void> => {
      const name = SERVER_ROW(workers.length, n, c);
      // Each new worker gets its share of the warm-up (its first tasks, its connections).
      await transfers(client, taskQueue, 'warm-up', `warm${workers.length}`, o.warmup * workers.length, Math.min(c, 16), o);
      const before = await snapshot(pgT!, pgL!, metricsPort, pids, workers, dbs.temporal, dbs.ledger(n));
      const m = await transfers(client, taskQueue, name, `w${workers.length}c${c}`, o.workflows, c, o);
      const after = await snapshot(pgT!, pgL!, metricsPort, pids, workers, dbs.temporal, dbs.ledger(n));
      const costs = perTransfer(before, after, m.count);
      const cpuNote = `CPU ms/transfer: server ${costs.cpuMs.temporal}, worker${workers.length > 1 ? 's' : ''} ${costs.cpuMs.workers.join(' + ')}, client ${costs.cpuMs.client}, PostgreSQL Temporal ${costs.cpuMs.postgresTemporal} + ledger ${costs.cpuMs.postgresLedger}`;
      rows.push({
        ...row(name, 'server', c, m, baseline, [notes, cpuNote].filter(Boolean).join('; ')),
        cpuMsPerOp: { temporal: costs.cpuMs.temporal, worker: round(costs.cpuMs.workers.reduce((a, b) => a + b, 0), 3), postgres: round(costs.cpuMs.postgresTemporal + costs.cpuMs.postgresLedger, 3) },
        serverCosts: costs, workers: workers.length, ledgerShards: n, historyShards: server!.historyShards,
      });
      say(`${name}: ${m.opsPerSec.toFixed(1)}/s, p99 ${m.p99Ms.toFixed(0)} ms; ${costs.temporal.stateTransitions} state transitions, ${costs.temporal.persistenceWrites} persistence writes, ${costs.postgresLedger.roundTripsPerStep} ledger round trips per step`);
    };

    // 2 ledger shards: 1, 2, 4 worker processes on one task queue.
    const counts = o.quick ? [1] : [1, 2, 4];
    for (const k of counts) {
      while (workers.length < k) workers.push(await startWorker(env(2, 'srv2'), join(o.dir, `srv2-worker-${workers.length + 1}.log`), say));
      const baseline = k === 1 ? o.devServerRow : SERVER_ROW(1, 2, c);
      const notes = k === 1
        ? `\`transfer worker\` child process(es) on the Temporal server (PostgreSQL, ${server.historyShards} history shards); ratio vs the dev server's e2e row at the same concurrency`
        : undefined;
      await runRow(2, 'srv2', baseline, notes ?? '');
    }
    await Promise.all(workers.splice(0).map((w) => w.stop()));

    // 4 ledger shards, 2 workers: against the 2-worker row on 2 shards.
    if (shardSets.includes(4)) {
      for (let i = 0; i < 2; i++) workers.push(await startWorker(env(4, 'srv4'), join(o.dir, `srv4-worker-${i + 1}.log`), say));
      await runRow(4, 'srv4', SERVER_ROW(2, 2, c), 'the same with the accounts over 4 shard databases (one PostgreSQL cluster); ratio vs 2 workers on 2 shards');
      await Promise.all(workers.splice(0).map((w) => w.stop()));
    }
    for (const [n, ledger] of ledgers) {
      const report = await ledger.verify();
      verify.push({ shards: n, ok: report.ok, violations: report.violations.length });
    }
    return { rows, verify };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await connection?.close().catch(() => undefined);
    await server?.stop();
    for (const l of ledgers.values()) await l.close().catch(() => undefined);
    await Promise.all([pgT?.stop(), pgL?.stop()]);
  }
}

// ---- transfers ----

function pair(i: number): readonly [string, string] {
  // As bench/run.ts: i → (i, 7i+1) mod 64, never the same account, all shards mixed.
  return [`acct-${i % ACCOUNTS}`, `acct-${(i * 7 + 1) % ACCOUNTS}`];
}

/** Closed loop of transfers started as the product starts them; each must end COMPLETED. `tag` keeps ids unique. */
function transfers(client: Client, taskQueue: string, label: string, tag: string, count: number, c: number, o: ServerGroupOptions): Promise<Measured> {
  return measure({ label, count, concurrency: c, maxSeconds: o.workflowSeconds }, async (i) => {
    const [from, to] = pair(i);
    const transferId = `${taskQueue}-${tag}-${o.stamp}-${i}`;
    const started = await startTransfer(client, taskQueue, { transferId, from, to, amount: '1', currency: 'USD' });
    const result = await transferResult(started.handle);
    if (result.status !== 'COMPLETED') throw new Error(`transfer ${transferId} ended ${result.status}`);
  });
}

// ---- worker processes ----

interface WorkerChild {
  pid: number;
  stop(): Promise<void>;
}

function workerEnv(shardUrls: string[], address: string, taskQueue: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['DATABASE_URL', 'LEDGER_SLOT_MAP', 'TEMPORAL_API_KEY', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_CA', 'TRANSFER_APPROVERS', 'TRANSFER_APPROVAL_THRESHOLD']) delete env[k];
  return { ...env, LEDGER_SHARD_URLS: shardUrls.join(','), TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'default', TEMPORAL_TASK_QUEUE: taskQueue, METRICS_PORT: '0', TEMPORAL_METRICS_PORT: '0' };
}

/** `node bin/transfer.js worker`, its JSON log in a file; ready when it logs "worker started". */
async function startWorker(env: NodeJS.ProcessEnv, logFile: string, say: (line: string) => void): Promise<WorkerChild> {
  const fd = openSync(logFile, 'a');
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(new URL('../bin/transfer.js', import.meta.url)), 'worker'], { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  };
  const t0 = Date.now();
  try {
    while (!readFileSync(logFile, 'utf8').includes('"worker started"')) {
      if (child.exitCode !== null) throw new Error(`a worker exited (${child.exitCode}) during start; see ${logFile}`);
      if (Date.now() - t0 > 180_000) throw new Error(`a worker did not start in 180 s; see ${logFile}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  say(`worker pid ${child.pid} started in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { pid: child.pid!, stop };
}

// ---- counters ----

interface Snapshot {
  metrics: { transitions: number; persistence: Map<string, number>; latency: Map<string, { sum: number; count: number }>; visibility: number };
  temporalDb: PgCounters;
  ledgerDb: PgCounters;
  cpu: { temporal: number; workers: number[]; client: number; pgTemporal: number; pgLedger: number };
}

interface PgCounters { commits: number; statements: number; roundTrips: number; walLsn: bigint; walSyncs: number; xids: bigint; byQuery: Map<string, number> }

async function sql<T extends pg.QueryResultRow>(p: RunningPostgres, text: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: p.url('postgres') });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

/**
 * Cumulative statistics are flushed by each backend when it goes idle, at most once a second: a
 * pause before each reading lets the row's last commits arrive (and the window shifts equally at both
 * ends). pg_stat_statements and the WAL position are exact.
 */
async function pgCounters(p: RunningPostgres, databases: string[]): Promise<PgCounters> {
  const [r] = await sql<{ commits: string; lsn: string; syncs: string; xmax: string }>(p, `
    SELECT (SELECT coalesce(sum(xact_commit), 0) FROM pg_stat_database WHERE datname = ANY($1::text[])) AS commits,
           pg_current_wal_lsn() - '0/0'::pg_lsn AS lsn,
           (SELECT wal_sync FROM pg_stat_wal) AS syncs,
           pg_snapshot_xmax(pg_current_snapshot())::text AS xmax`, [databases]);
  // A deferred constraint trigger's statements run at COMMIT at the top level: counted by
  // pg_stat_statements, but no round trip of the client (they name NEW or OLD).
  const statements = await sql<{ query: string; calls: string; trigger: boolean }>(p, `
    SELECT left(regexp_replace(s.query, '\\s+', ' ', 'g'), 90) AS query, sum(s.calls) AS calls, s.query ~ '\\m(NEW|OLD)\\.' AS trigger
      FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = ANY($1::text[]) GROUP BY 1, 3`, [databases]);
  const byQuery = new Map(statements.map((q) => [q.query, Number(q.calls)]));
  const sum = (qs: typeof statements) => qs.reduce((a, q) => a + Number(q.calls), 0);
  return {
    commits: Number(r!.commits), statements: sum(statements), roundTrips: sum(statements.filter((q) => !q.trigger)), walLsn: BigInt(String(r!.lsn).split('.')[0]!),
    walSyncs: Number(r!.syncs), xids: BigInt(r!.xmax), byQuery,
  };
}

/** The Temporal server's Prometheus text: the counters the capacity model needs. */
async function temporalMetrics(port: number): Promise<Snapshot['metrics']> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const persistence = new Map<string, number>();
  const latency = new Map<string, { sum: number; count: number }>();
  let transitions = 0;
  let visibility = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('persistence_requests{')) {
      const op = /operation="([^"]*)"/.exec(line)?.[1] ?? '?';
      persistence.set(op, (persistence.get(op) ?? 0) + value);
    } else if (line.startsWith('persistence_latency_sum{') || line.startsWith('persistence_latency_count{')) {
      const op = /operation="([^"]*)"/.exec(line)?.[1] ?? '?';
      const l = latency.get(op) ?? { sum: 0, count: 0 };
      if (line.startsWith('persistence_latency_sum{')) l.sum += value;
      else l.count += value;
      latency.set(op, l);
    } else if (line.startsWith('state_transition_count_sum{') && line.includes('namespace="default"')) transitions += value;
    else if (line.startsWith('visibility_persistence_requests{')) visibility += value;
  }
  return { transitions, persistence, latency, visibility };
}

async function snapshot(pgT: RunningPostgres, pgL: RunningPostgres, metricsPort: number, pids: { temporal: number; pgTemporal: number; pgLedger: number }, workers: WorkerChild[], temporalDbs: string[], ledgerDbs: string[]): Promise<Snapshot> {
  await new Promise((r) => setTimeout(r, 1_500));
  const [metrics, temporalDb, ledgerDb] = await Promise.all([temporalMetrics(metricsPort), pgCounters(pgT, temporalDbs), pgCounters(pgL, ledgerDbs)]);
  const cpu = { temporal: cpuMs(pids.temporal), workers: workers.map((w) => cpuMs(w.pid)), client: cpuMs(process.pid), pgTemporal: treeCpuMs(pids.pgTemporal), pgLedger: treeCpuMs(pids.pgLedger) };
  return { metrics, temporalDb, ledgerDb, cpu };
}

function perTransfer(a: Snapshot, b: Snapshot, n: number): ServerCosts {
  const per = (x: number, digits = 2) => round(x / Math.max(1, n), digits);
  const writesByOperation: Record<string, number> = {};
  let requests = 0;
  let writes = 0;
  for (const [op, value] of b.metrics.persistence) {
    const d = value - (a.metrics.persistence.get(op) ?? 0);
    requests += d;
    if (WRITE_OPERATION.test(op) && d > 0) {
      writes += d;
      writesByOperation[op] = per(d);
    }
  }
  // Timers are exported in seconds.
  const latencyMs: Record<string, number> = {};
  let latencySum = 0;
  let latencyCount = 0;
  for (const [op, l] of b.metrics.latency) {
    if (!WRITE_OPERATION.test(op)) continue;
    const before = a.metrics.latency.get(op) ?? { sum: 0, count: 0 };
    const [sum, count] = [l.sum - before.sum, l.count - before.count];
    if (count <= 0) continue;
    latencySum += sum;
    latencyCount += count;
    if (count >= n / 10) latencyMs[op] = round((sum / count) * 1000, 2);
  }
  const pgCosts = (x: PgCounters, y: PgCounters): PostgresCosts => ({
    commits: per(y.commits - x.commits), xids: per(Number(y.xids - x.xids)), statements: per(y.statements - x.statements), roundTrips: per(y.roundTrips - x.roundTrips),
    walBytes: per(Number(y.walLsn - x.walLsn), 0), walSyncs: per(y.walSyncs - x.walSyncs),
    topStatements: [...y.byQuery].map(([query, calls]) => ({ query, calls: per(calls - (x.byQuery.get(query) ?? 0)) })).filter((q) => q.calls > 0).sort((m, k) => k.calls - m.calls).slice(0, 8),
  });
  const ledger = pgCosts(a.ledgerDb, b.ledgerDb);
  return {
    temporal: {
      stateTransitions: per(b.metrics.transitions - a.metrics.transitions), persistenceRequests: per(requests), persistenceWrites: per(writes),
      writesByOperation: Object.fromEntries(Object.entries(writesByOperation).sort((x, y) => y[1] - x[1])), visibilityRequests: per(b.metrics.visibility - a.metrics.visibility),
      writeLatencyMs: { all: latencyCount ? round((latencySum / latencyCount) * 1000, 2) : 0, byOperation: latencyMs },
    },
    postgresTemporal: pgCosts(a.temporalDb, b.temporalDb),
    postgresLedger: { ...ledger, roundTripsPerStep: round(ledger.roundTrips / STEPS_PER_TRANSFER, 2), commitsPerStep: round(ledger.commits / STEPS_PER_TRANSFER, 2) },
    cpuMs: {
      temporal: per(b.cpu.temporal - a.cpu.temporal), workers: b.cpu.workers.map((w, i) => per(w - (a.cpu.workers[i] ?? 0))), client: per(b.cpu.client - a.cpu.client),
      postgresTemporal: per(b.cpu.pgTemporal - a.cpu.pgTemporal), postgresLedger: per(b.cpu.pgLedger - a.cpu.pgLedger),
    },
  };
}

/** The per-transfer costs of the server rows, as printed under the table. */
export function formatServerCosts(rows: ServerRow[]): string {
  const out: string[] = [];
  for (const r of rows) {
    const k = r.serverCosts;
    if (!k) continue;
    const t = k.temporal;
    const top = Object.entries(t.writesByOperation).slice(0, 6).map(([op, v]) => `${op} ${v}`).join(', ');
    out.push(
      `${r.name} (${r.count} transfers):`,
      `  Temporal: ${t.stateTransitions} state transitions, ${t.persistenceWrites} persistence writes (${top}), ${t.persistenceRequests} persistence requests in all, ${t.visibilityRequests} visibility requests; mean write latency ${t.writeLatencyMs.all} ms (${Object.entries(t.writeLatencyMs.byOperation).map(([op, v]) => `${op} ${v}`).join(', ')})`,
      `  PostgreSQL for Temporal: ${k.postgresTemporal.commits} commits (${k.postgresTemporal.xids} write transactions), ${k.postgresTemporal.roundTrips} statements, ${k.postgresTemporal.walSyncs} WAL flushes, ${(k.postgresTemporal.walBytes / 1024).toFixed(1)} KiB WAL`,
      `  PostgreSQL for the ledger: ${k.postgresLedger.commits} commits (${k.postgresLedger.commitsPerStep} a step; ${k.postgresLedger.xids} xids with subtransactions), ${k.postgresLedger.roundTrips} statements (${k.postgresLedger.roundTripsPerStep} a step; ${k.postgresLedger.statements} with the deferred trigger's at commit), ${k.postgresLedger.walSyncs} WAL flushes, ${(k.postgresLedger.walBytes / 1024).toFixed(1)} KiB WAL`,
      `  CPU ms: Temporal server ${k.cpuMs.temporal}, worker${k.cpuMs.workers.length > 1 ? 's' : ''} ${k.cpuMs.workers.join(' + ')}, client ${k.cpuMs.client}, PostgreSQL for Temporal ${k.cpuMs.postgresTemporal}, for the ledger ${k.cpuMs.postgresLedger}`,
    );
  }
  return out.join('\n');
}
