/**
 * The relay trade-off, measured: commit-to-relay latency and the database load each relay mode
 * causes, at a fixed request rate, all in one run on one (durable) PostgreSQL.
 *
 *   npm run bench:messaging                       # 500 requests/s for 10 s per mode
 *   BENCH_MSG_RATE=200 BENCH_MSG_SECONDS=5 npm run bench:messaging
 *
 * Modes: polling every 10 ms, 100 ms and 1 s without NOTIFY; polling with NOTIFY (1 s floor); the
 * log relay (logical decoding). The relay's hand-over is replaced by a recorder, so the figures are
 * the relay's own (Temporal's start latency is measured by the main benchmark).
 *
 * Load: transactions/s and rows read/s of the producer database attributable to the relay (the
 * producer's own inserts subtracted), and the CPU seconds of the relay's PostgreSQL backends
 * (including the WAL sender in log mode) per second of wall time, read from /proc.
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Client } from '@temporalio/client';
import { createPool } from '../src/db/transaction.js';
import { startEmbeddedPostgres } from '../src/embedded/postgres.js';
import { LogRelay } from '../src/messaging/relay-log.js';
import { PollRelay } from '../src/messaging/relay-poll.js';
import { installRequestTable, REQUESTS_TABLE, type Handled, type RequestRow } from '../src/messaging/requests.js';

const RATE = Number(process.env.BENCH_MSG_RATE ?? 500);
const SECONDS = Number(process.env.BENCH_MSG_SECONDS ?? 10);
/** Clock ticks per second in /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS = 100;

interface Row { mode: string; sent: number; relayed: number; p50: number; p99: number; statementsPerS: number; rowsReadPerS: number; backendCpu: number }

function cpuSecondsOf(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime + stime
    } catch {
      // the backend ended
    }
  }
  return ticks / TICKS;
}

async function relayPids(admin: pg.Client, db: string): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE (datname = $1 AND application_name = 'durable-transfer') OR backend_type = 'walsender'`, [db]);
  return rows.map((r) => r.pid);
}

/**
 * Statements the relay ran (pg_stat_statements, counted at each statement's end; the producer's own
 * inserts, the NOTIFY their trigger runs, and this benchmark's queries excluded) and rows read (pg_stat_database, flushed lazily:
 * read after a pause).
 */
async function stats(admin: pg.Client, db: string): Promise<{ statements: number; read: number }> {
  await new Promise((r) => setTimeout(r, 1_200));
  const { rows } = await admin.query<{ statements: string; read: string }>(
    `SELECT (SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
             WHERE d.datname = $1 AND s.query NOT LIKE 'INSERT INTO ${REQUESTS_TABLE}%'
               AND s.query NOT LIKE '%pg_notify%')::text AS statements,
            (SELECT tup_returned + tup_fetched FROM pg_stat_database WHERE datname = $1)::text AS read`, [db]);
  return { statements: Number(rows[0]!.statements), read: Number(rows[0]!.read) };
}

async function runMode(mode: string, url: string, db: string, admin: pg.Client, make: (handler: (row: RequestRow) => Promise<Handled>, pool: pg.Pool) => { start(): Promise<void>; stop(): Promise<void> }): Promise<Row> {
  const pool = createPool(url, 4);
  const producer = new pg.Pool({ connectionString: url, max: 4, application_name: 'bench-producer' });
  await pool.query(`TRUNCATE ${REQUESTS_TABLE}`);
  // Commit is taken as the moment the producer's COMMIT returned (a little after the server's commit,
  // so a relay can see a row before its producer does: those count as 0 ms).
  const committedAt = new Map<string, number>();
  const handledAt = new Map<string, number>();
  const handler = async (row: RequestRow): Promise<Handled> => {
    if (!handledAt.has(row.id)) handledAt.set(row.id, performance.now());
    return { kind: 'started', existed: false };
  };
  const relay = make(handler, pool);
  await relay.start();
  await new Promise((r) => setTimeout(r, 500)); // connected, idle
  const pids = await relayPids(admin, db);
  const cpu0 = cpuSecondsOf(pids);
  await admin.query('SELECT pg_stat_statements_reset()');
  const s0 = await stats(admin, db);
  const started = performance.now();
  let sent = 0;
  // Open loop at a fixed rate: requests are not held back by a slow relay.
  const inserts: Promise<void>[] = [];
  while (performance.now() - started < SECONDS * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * RATE);
    for (; sent < due; sent++) {
      const id = `${mode}-${sent}`;
      inserts.push(producer.query(`INSERT INTO ${REQUESTS_TABLE} (id, from_account, to_account, amount, currency) VALUES ($1, 'a', 'b', '1', 'USD')`, [id])
        .then(() => void committedAt.set(id, performance.now())));
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(inserts);
  const deadline = performance.now() + 5_000;
  while (handledAt.size < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const cpu1 = cpuSecondsOf(pids);
  const wall = (performance.now() - started) / 1000;
  const s1 = await stats(admin, db);
  const latencies = [...committedAt].filter(([id]) => handledAt.has(id)).map(([id, at]) => Math.max(0, handledAt.get(id)! - at));
  await relay.stop();
  await pool.end();
  await producer.end();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return {
    mode, sent, relayed: latencies.length, p50: pct(0.5), p99: pct(0.99),
    statementsPerS: (s1.statements - s0.statements) / wall,
    rowsReadPerS: (s1.read - s0.read) / wall,
    backendCpu: (cpu1 - cpu0) / wall,
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'transfer-bench-msg-'));
  await chmod(dir, 0o755);
  // Durable (fsync on), as users run it; pg_stat_statements counts what each relay mode executes.
  const server = await startEmbeddedPostgres({ dir: join(dir, 'pg'), databases: ['producer'], settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all' } });
  const url = server.url('producer');
  const admin = new pg.Client({ connectionString: server.url('postgres') });
  await admin.connect();
  await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  const noClient = {} as Client;
  try {
    const setup = createPool(url, 1);
    await installRequestTable(setup);
    await setup.end();
    console.log(`PostgreSQL ${server.port} (durable), ${RATE} requests/s for ${SECONDS} s per mode`);
    const rows: Row[] = [];
    for (const interval of [10, 100, 1000]) {
      rows.push(await runMode(`poll ${interval} ms, no NOTIFY`, url, 'producer', admin, (handler, pool) =>
        new PollRelay({ pool, url, client: noClient, taskQueue: '-', handler, intervalMs: interval, notify: false, batch: 200 })));
    }
    rows.push(await runMode('poll with NOTIFY (1 s floor)', url, 'producer', admin, (handler, pool) =>
      new PollRelay({ pool, url, client: noClient, taskQueue: '-', handler, intervalMs: 1000, notify: true, batch: 200 })));
    rows.push(await runMode('log (pgoutput slot)', url, 'producer', admin, (handler, pool) =>
      new LogRelay({ pool, url, client: noClient, taskQueue: '-', handler, slot: 'bench_slot' })));
    const baseline = rows[2]!; // the 1 s poll: the load the other modes are compared with
    console.log(`\n${'relay mode'.padEnd(30)} ${'relayed'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'stmts/s'.padStart(8)} ${'rows read/s'.padStart(12)} ${'PG CPU'.padStart(7)} ${'CPU vs 1 s poll'.padStart(16)}`);
    for (const r of rows) {
      console.log(`${r.mode.padEnd(30)} ${`${r.relayed}/${r.sent}`.padStart(9)} ${r.p50.toFixed(1).padStart(8)} ${r.p99.toFixed(1).padStart(8)} ${r.statementsPerS.toFixed(0).padStart(8)} ${r.rowsReadPerS.toFixed(0).padStart(12)} ${`${(r.backendCpu * 100).toFixed(1)}%`.padStart(7)} ${`${(r.backendCpu / Math.max(baseline.backendCpu, 1e-9)).toFixed(2)}x`.padStart(16)}`);
    }
    console.log('\nPG CPU: CPU time of the relay\'s PostgreSQL backends (and WAL sender) per second of wall time.');
    await admin.query(`SELECT pg_drop_replication_slot('bench_slot') WHERE EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'bench_slot')`).catch(() => undefined);
  } finally {
    await admin.end();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
