import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { stringify } from 'yaml';
import { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes.js';
import { msToTs } from '@temporalio/common/lib/time.js';
import { freePort, isListening, isPortFree } from '../embedded/ports.js';
import type { Progress } from './binaries.js';
import type { ServerBinaries } from './server-binaries.js';

const run = promisify(execFile);

/**
 * The production-like profile: the Temporal server itself (all four services in one process) on
 * PostgreSQL, with its schema set up by Temporal's own SQL tool, and the Web UI server in front of
 * it. Everything listens on 127.0.0.1 only; both run as our children, with their output in log files,
 * and are stopped by their own pids.
 */

export const TEMPORAL_DATABASE = 'temporal';
export const TEMPORAL_VISIBILITY_DATABASE = 'temporal_visibility';
export const DEFAULT_HISTORY_SHARDS = 4;

/**
 * Dynamic config of the server profile. Eager workflow start is on by default in v1.29 and eager
 * activity execution is off: both are set, as on the dev server (DEV_SERVER_TUNING), so the two
 * profiles run the same protocol.
 */
export const SERVER_DYNAMIC_CONFIG: Readonly<Record<string, unknown>> = {
  'system.enableActivityEagerExecution': true,
  'system.enableEagerWorkflowStart': true,
  'frontend.enableUpdateWorkflowExecution': true,
  'frontend.enableUpdateWorkflowExecutionAsyncAccepted': true,
  'limit.maxIDLength': 255,
};

export interface PostgresEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
}

export interface TemporalServerOptions {
  binaries: ServerBinaries;
  /** Holds the generated config, the dynamic config and the UI config. */
  dir: string;
  postgres: PostgresEndpoint;
  /** Preferred frontend port (the next free one is used); the internal ports are any free ones. */
  port: number;
  /** Preferred Web UI port; undefined runs no Web UI. */
  uiPort?: number;
  namespace: string;
  searchAttributes: SearchAttributeKey<SearchAttributeType>[];
  /** Fixed when the cluster is created; TEMPORAL_HISTORY_SHARDS, default 4. */
  historyShards?: number;
  logFile: string;
  uiLogFile?: string;
  /** Ports the caller already holds (never chosen). */
  avoidPorts?: number[];
  /**
   * `host:port` for the server's Prometheus endpoint (`global.metrics.prometheus`, path `/metrics`);
   * undefined exposes none (the profile's default; the benchmark reads the server's counters).
   */
  metricsAddress?: string;
  progress?: Progress;
  startTimeoutMs?: number;
}

export interface RunningTemporalServer {
  pid: number;
  uiPid?: number;
  address: string;
  webUi?: string;
  historyShards: number;
  /** Every port the server and the UI listen on (for tests that check nothing is left). */
  ports: number[];
  stop(): Promise<void>;
}

export function historyShardsFromEnv(value = process.env.TEMPORAL_HISTORY_SHARDS): number {
  if (value === undefined || value === '') return DEFAULT_HISTORY_SHARDS;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 16384) throw new Error(`TEMPORAL_HISTORY_SHARDS must be an integer from 1 to 16384 (got ${value})`);
  return n;
}

const pgUrl = (p: PostgresEndpoint, database: string) => `postgres://${encodeURIComponent(p.user)}:${encodeURIComponent(p.password)}@${p.host}:${p.port}/${database}`;

/** Creates the two databases if missing, then brings both schemas to the module's latest version. */
export async function setupTemporalSchema(binaries: ServerBinaries, postgres: PostgresEndpoint, progress: Progress = () => undefined): Promise<void> {
  const admin = new pg.Client({ connectionString: pgUrl(postgres, 'postgres') });
  await admin.connect();
  try {
    for (const db of [TEMPORAL_DATABASE, TEMPORAL_VISIBILITY_DATABASE]) {
      const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1::text', [db]);
      if (!found.rowCount) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(db)}`);
    }
  } finally {
    await admin.end();
  }
  for (const [db, schema] of [[TEMPORAL_DATABASE, 'temporal'], [TEMPORAL_VISIBILITY_DATABASE, 'visibility']] as const) {
    const client = new pg.Client({ connectionString: pgUrl(postgres, db) });
    await client.connect();
    let versioned: boolean;
    try {
      versioned = ((await client.query("SELECT to_regclass('public.schema_version') IS NOT NULL AS present")).rows[0] as { present: boolean }).present;
    } finally {
      await client.end();
    }
    // The password travels in the environment (SQL_PASSWORD), never on a command line.
    const base = ['--endpoint', postgres.host, '--port', String(postgres.port), '--user', postgres.user, '--database', db, '--plugin', 'postgres12'];
    const env = { ...process.env, SQL_PASSWORD: postgres.password };
    if (!versioned) {
      progress(`  setting up the ${db} schema (temporal-sql-tool)`);
      await runTool(binaries.sqlTool, [...base, 'setup-schema', '--version', '0.0'], env);
    }
    await runTool(binaries.sqlTool, [...base, 'update-schema', '--schema-dir', join(binaries.schemaDir, schema, 'versioned')], env);
  }
}

async function runTool(path: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  try {
    await run(path, args, { env, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`temporal-sql-tool ${args.filter((a) => a !== env.SQL_PASSWORD).join(' ')} failed: ${e.message}\n${(e.stdout ?? '').slice(-2000)}${(e.stderr ?? '').slice(-2000)}`);
  }
}

/**
 * Distinct free ports below 32768, none of them in `avoid`: Temporal's cluster_membership table keeps
 * a service's membership port in a PostgreSQL smallint, so a kernel-chosen ephemeral port (32768 and
 * up on Linux) makes the server exit at start ("value … is out of range for type smallint"). The
 * search starts at a random point so two stacks starting at once rarely meet.
 */
async function lowPorts(count: number, avoid: number[]): Promise<number[]> {
  const chosen: number[] = [];
  const first = 20_000 + Math.floor(Math.random() * 12_000);
  for (let i = 0; i < 22_000 && chosen.length < count; i++) {
    const port = 10_000 + ((first - 10_000 + i) % 22_000);
    if (!avoid.includes(port) && !chosen.includes(port) && (await isPortFree(port))) chosen.push(port);
  }
  if (chosen.length < count) throw new Error('no free ports below 32768 on 127.0.0.1 for the Temporal server\'s services');
  return chosen;
}

export function serverConfig(o: { postgres: PostgresEndpoint; historyShards: number; ports: Record<'frontend' | 'frontendMembership' | 'frontendHttp' | 'history' | 'historyMembership' | 'matching' | 'matchingMembership' | 'worker' | 'workerMembership', number>; dynamicConfigFile: string; metricsAddress?: string }): Record<string, unknown> {
  const ip = '127.0.0.1';
  const sql = (databaseName: string, conns: number) => ({
    sql: {
      pluginName: 'postgres12', databaseName, connectAddr: `${o.postgres.host}:${o.postgres.port}`, connectProtocol: 'tcp',
      user: o.postgres.user, password: o.postgres.password, maxConns: conns, maxIdleConns: conns, maxConnLifetime: '1h',
    },
  });
  const service = (grpcPort: number, membershipPort: number, httpPort?: number) => ({ rpc: { grpcPort, membershipPort, bindOnIP: ip, ...(httpPort ? { httpPort } : {}) } });
  return {
    log: { stdout: true, level: 'warn', format: 'json' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: o.historyShards,
      datastores: { 'postgres-default': sql(TEMPORAL_DATABASE, 20), 'postgres-visibility': sql(TEMPORAL_VISIBILITY_DATABASE, 10) },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: ip },
      ...(o.metricsAddress ? { metrics: { prometheus: { framework: 'tally', timerType: 'histogram', listenAddress: o.metricsAddress } } } : {}),
    },
    services: {
      frontend: service(o.ports.frontend, o.ports.frontendMembership, o.ports.frontendHttp),
      history: service(o.ports.history, o.ports.historyMembership),
      matching: service(o.ports.matching, o.ports.matchingMembership),
      worker: service(o.ports.worker, o.ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `${ip}:${o.ports.frontend}`, httpAddress: `${ip}:${o.ports.frontendHttp}` } },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    publicClient: { hostPort: `${ip}:${o.ports.frontend}` },
    dynamicConfigClient: { filepath: o.dynamicConfigFile, pollInterval: '10s' },
  };
}

export function dynamicConfigYaml(values: Readonly<Record<string, unknown>> = SERVER_DYNAMIC_CONFIG): string {
  return stringify(Object.fromEntries(Object.entries(values).map(([k, value]) => [k, [{ value, constraints: {} }]])));
}

export function uiConfig(o: { uiPort: number; frontend: string; namespace: string }): Record<string, unknown> {
  return {
    host: '127.0.0.1',
    port: o.uiPort,
    temporalGrpcAddress: o.frontend,
    publicPath: '',
    enableUi: true,
    defaultNamespace: o.namespace,
    showTemporalSystemNamespace: false,
    notifyOnNewVersion: false, // offline: no version check
    hideLogs: true,
    refreshInterval: '0s',
    cors: { cookieInsecure: true, allowOrigins: [], unsafeAllowAllOrigins: false },
    auth: { enabled: false },
    forwardHeaders: [],
  };
}

/** The shard count a data directory was created with wins over a later TEMPORAL_HISTORY_SHARDS. */
async function fixedHistoryShards(dir: string, wanted: number, progress: Progress): Promise<number> {
  const file = join(dir, 'history-shards');
  if (existsSync(file)) {
    const persisted = Number((await readFile(file, 'utf8')).trim());
    if (Number.isInteger(persisted) && persisted > 0) {
      if (persisted !== wanted) progress(`  history shards: ${persisted}, fixed when this cluster was created (TEMPORAL_HISTORY_SHARDS=${wanted} applies after \`transfer reset\`)`);
      return persisted;
    }
  }
  await writeFile(file, `${wanted}\n`);
  return wanted;
}

export async function startTemporalServer(o: TemporalServerOptions): Promise<RunningTemporalServer> {
  const progress = o.progress ?? (() => undefined);
  await mkdir(join(o.dir, 'config'), { recursive: true, mode: 0o700 });
  await setupTemporalSchema(o.binaries, o.postgres, progress);
  const historyShards = await fixedHistoryShards(o.dir, o.historyShards ?? DEFAULT_HISTORY_SHARDS, progress);

  const avoid = [...(o.avoidPorts ?? []), o.postgres.port];
  const frontend = await freePort(o.port, avoid);
  const [frontendMembership, frontendHttp, history, historyMembership, matching, matchingMembership, worker, workerMembership] = await lowPorts(8, [...avoid, frontend]);
  const ports = { frontend, frontendMembership: frontendMembership!, frontendHttp: frontendHttp!, history: history!, historyMembership: historyMembership!, matching: matching!, matchingMembership: matchingMembership!, worker: worker!, workerMembership: workerMembership! };
  const dynamicConfigFile = join(o.dir, 'config', 'dynamicconfig.yaml');
  await writeFile(dynamicConfigFile, dynamicConfigYaml());
  // The config holds the PostgreSQL password: owner-only.
  await writeFile(join(o.dir, 'config', 'development.yaml'), stringify(serverConfig({ postgres: o.postgres, historyShards, ports, dynamicConfigFile, ...(o.metricsAddress ? { metricsAddress: o.metricsAddress } : {}) })), { mode: 0o600 });

  const address = `127.0.0.1:${frontend}`;
  const server = spawnLogged(o.binaries.server, ['--root', o.dir, '--config', 'config', '--env', 'development', '--allow-no-auth', 'start'], o.logFile);
  let ui: Spawned | undefined;
  try {
    await waitServing(server, address, o.logFile, o.startTimeoutMs ?? 120_000);
    await registerNamespace(address, o.namespace, o.searchAttributes, progress);
    let webUi: string | undefined;
    let uiPort: number | undefined;
    if (o.uiPort !== undefined && o.binaries.uiServer) {
      uiPort = await freePort(o.uiPort, [...avoid, ...Object.values(ports)]);
      await mkdir(join(o.dir, 'ui'), { recursive: true });
      await writeFile(join(o.dir, 'ui', 'development.yaml'), stringify(uiConfig({ uiPort, frontend: address, namespace: o.namespace })));
      ui = spawnLogged(o.binaries.uiServer, ['--root', o.dir, '--config', 'ui', '--env', 'development', 'start'], o.uiLogFile ?? o.logFile);
      await waitListening(ui, '127.0.0.1', uiPort, 'the Temporal Web UI server', o.uiLogFile ?? o.logFile, 60_000);
      webUi = `http://127.0.0.1:${uiPort}`;
    }
    const started = ui;
    return {
      pid: server.child.pid!,
      ...(started ? { uiPid: started.child.pid! } : {}),
      address,
      ...(webUi ? { webUi } : {}),
      historyShards,
      ports: [...Object.values(ports), ...(uiPort ? [uiPort] : [])],
      async stop() {
        await stopSpawned(started);
        await stopSpawned(server);
      },
    };
  } catch (error) {
    await stopSpawned(ui);
    await stopSpawned(server);
    throw error;
  }
}

interface Spawned {
  child: ChildProcess;
  exited: Promise<unknown>;
}

function spawnLogged(path: string, args: string[], logFile: string): Spawned {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.once('error', () => undefined); // a missing binary surfaces as an exit during start
  return { child, exited };
}

const gone = (s: Spawned) => s.child.exitCode !== null || s.child.signalCode !== null;

/** SIGTERM by pid, SIGKILL after 15 s. */
async function stopSpawned(s: Spawned | undefined): Promise<void> {
  if (!s || gone(s) || s.child.pid === undefined) return;
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 15_000);
  await s.exited;
  clearTimeout(timer);
}

/** Up means the frontend answers GetSystemInfo (it listens before its services have joined). */
async function waitServing(server: Spawned, address: string, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gone(server)) throw new Error(`the Temporal server exited (${server.child.exitCode ?? server.child.signalCode}) during start; see ${logFile}`);
    const [host, port] = [address.split(':')[0]!, Number(address.split(':')[1])];
    if (await isListening(host, port)) {
      let connection: Connection | undefined;
      try {
        connection = await Connection.connect({ address, connectTimeout: 2_000 });
        await connection.workflowService.getSystemInfo({});
        return;
      } catch {
        // not ready yet
      } finally {
        await connection?.close().catch(() => undefined);
      }
    }
    if (Date.now() > deadline) throw new Error(`the Temporal server did not answer on ${address} within ${Math.round(timeoutMs / 1000)} s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function waitListening(s: Spawned, host: string, port: number, what: string, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gone(s)) throw new Error(`${what} exited (${s.child.exitCode ?? s.child.signalCode}) during start; see ${logFile}`);
    if (await isListening(host, port)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${host}:${port} in time; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}


/** temporal.api.enums.v1.IndexedValueType, by the SDK's search attribute type names. */
const INDEXED: Record<string, number> = { TEXT: 1, KEYWORD: 2, INT: 3, DOUBLE: 4, BOOL: 5, DATETIME: 6, KEYWORD_LIST: 7 };

const NOT_FOUND = 5;

/** Retries `f` while the namespace is not found yet (up to 60 s). */
async function untilFound<T>(f: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await f();
    } catch (error) {
      if ((error as { code?: number }).code !== NOT_FOUND || Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
const ALREADY_EXISTS = 6;

/**
 * The server starts with no namespace: register ours (3 days of retention, as the dev server keeps
 * closed workflows) and its search attributes, through the operator API. Both are idempotent.
 */
export async function registerNamespace(address: string, namespace: string, keys: SearchAttributeKey<SearchAttributeType>[], progress: Progress = () => undefined): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const exists = await connection.workflowService.describeNamespace({ namespace }).then(() => true, (error: { code?: number }) => {
      if (error.code === NOT_FOUND) return false;
      throw error;
    });
    if (!exists) {
      progress(`  registering namespace ${namespace}`);
      await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('3 days') }).catch((error: { code?: number }) => {
        if (error.code !== ALREADY_EXISTS) throw error;
      });
    }
    // Each service sees a new namespace (and a search attribute, which on SQL visibility is part of
    // the namespace) at its registry's next refresh (system.namespaceCacheRefreshInterval, 2 s).
    const custom = async () => (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
    const listed = await untilFound(custom);
    const missing = keys.filter((k) => !(k.name in listed));
    if (missing.length) {
      progress(`  registering search attributes ${missing.map((k) => k.name).join(', ')}`);
      await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: Object.fromEntries(missing.map((k) => [k.name, INDEXED[k.type]!])) });
      const deadline = Date.now() + 60_000;
      while (!keys.every((k) => k.name in listed)) {
        if (Date.now() > deadline) throw new Error(`search attributes ${missing.map((k) => k.name).join(', ')} did not appear on namespace ${namespace}`);
        await new Promise((r) => setTimeout(r, 250));
        Object.assign(listed, await custom());
      }
      // The frontend has them; history and matching refresh on the same interval.
      await new Promise((r) => setTimeout(r, 2_500));
    }
  } finally {
    await connection.close();
  }
}
