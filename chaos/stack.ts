import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRANSFER_SEARCH_ATTRIBUTES } from '../src/domain/search-attributes.js';
import { freePort } from '../src/embedded/ports.js';
import { startEmbeddedPostgres, type RunningPostgres } from '../src/embedded/postgres.js';
import { startDevServer, type RunningDevServer } from '../src/temporal/dev-server.js';
import type { FaultTarget } from './controller.js';
import type { Findings } from './findings.js';
import { alive, killGroup, killTree, processTree, signal, sleep, spawnGroup, stopGroup, tail, waitGone, writeControl, type Supervised } from './processes.js';

/**
 * The stack as separate processes this run controls, so each fault hits one of them: an embedded
 * PostgreSQL (two shard databases) on its own data directory, the Temporal dev server on its own
 * SQLite file, and N `transfer worker` processes. Restarts reuse the same ports and the same data.
 */
export const SHARD_DATABASES = ['chaos_0', 'chaos_1'];
const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface StackOptions {
  dir: string;
  workers: number;
  taskQueue: string;
  temporalCli: string;
  /** Worker configuration (approval threshold, hold TTL, ...). */
  workerEnv: Record<string, string>;
  /** The workflow bundle, built once per run (see src/testing/faults.ts). */
  workflowBundle: string;
  /** Empty databases created with the shards, for `transfer shards add` (the slot-move variant). */
  extraDatabases?: string[];
  /** TRANSFER_TEST_FAULTS every worker runs with unless a fault says otherwise. */
  baseFaults: string;
  findings: Findings;
  log: (line: string) => void;
}

export class ComposedStack implements FaultTarget {
  pg?: RunningPostgres;
  pgPort = 0;
  temporal?: RunningDevServer;
  temporalPort = 0;
  uiPort = 0;
  readonly workers: (Supervised | undefined)[] = [];
  private readonly workerFaults: string[] = [];
  /** Temporal crashes so far, and their count when each worker was started. */
  private temporalCrashes = 0;
  private readonly workerEpoch: number[] = [];
  /** Whether each worker was (re)started while Temporal was down: it may exit 3 without a new crash. */
  private readonly bootedWithTemporalDown: boolean[] = [];
  private stopping = false;
  private watching = false;
  private monitor?: NodeJS.Timeout;
  /** Components a fault has taken down on purpose (not restarted by the monitor). */
  private readonly down = new Set<string>();

  constructor(readonly o: StackOptions) {
    for (let i = 0; i < o.workers; i++) this.workerFaults.push(o.baseFaults);
  }

  get shardUrls(): string[] {
    return SHARD_DATABASES.map((db) => this.pg!.url(db));
  }

  /** The databases for shards added while running (not given to the workers: they find them in the registry). */
  get extraShardUrls(): string[] {
    return (this.o.extraDatabases ?? []).map((db) => this.pg!.url(db));
  }

  get temporalAddress(): string {
    return `127.0.0.1:${this.temporalPort}`;
  }

  async start(): Promise<void> {
    await this.startPostgres();
    this.temporalPort = await freePort(17233 + Math.floor(Math.random() * 2000), [this.pgPort]);
    this.uiPort = await freePort(this.temporalPort + 1, [this.pgPort, this.temporalPort]);
    await this.startTemporal();
    this.monitor = setInterval(() => void this.watch(), 500);
  }

  get workerCount(): number {
    return this.o.workers;
  }

  async crashAll(): Promise<void> {
    const workers = Array.from({ length: this.o.workers }, (_, i) => this.killWorker(i));
    await Promise.all([...workers, this.crashTemporal(), this.crashPostgres('SIGKILL')]);
  }

  async restartAll(): Promise<void> {
    await this.startPostgres();
    await this.startTemporal();
    await this.startWorkers();
  }

  async startWorkers(): Promise<void> {
    for (let i = 0; i < this.o.workers; i++) this.startWorker(i);
  }

  async startPostgres(): Promise<void> {
    const preferred = this.pgPort || 25432 + Math.floor(Math.random() * 2000);
    this.pg = await startEmbeddedPostgres({ dir: join(this.o.dir, 'postgres'), port: preferred, databases: [...SHARD_DATABASES, ...(this.o.extraDatabases ?? [])], log: (l) => this.o.log(`  ${l}`) });
    if (this.pgPort && this.pg.port !== this.pgPort) throw new Error(`PostgreSQL came back on port ${this.pg.port} instead of ${this.pgPort} (taken meanwhile)`);
    this.pgPort = this.pg.port;
    this.down.delete('postgres');
  }

  /** SIGQUIT is PostgreSQL's immediate shutdown (what `pg_ctl -m immediate` sends); SIGKILL a crash. */
  async crashPostgres(how: 'SIGQUIT' | 'SIGKILL'): Promise<void> {
    this.down.add('postgres');
    const pid = this.pg!.pid;
    if (how === 'SIGKILL') return killTree(pid);
    const tree = processTree(pid);
    signal(pid, 'SIGQUIT');
    if (!(await waitGone(tree, 10_000))) await killTree(pid);
  }

  async startTemporal(): Promise<void> {
    this.temporal = await startDevServer({
      path: this.o.temporalCli, ip: '127.0.0.1', port: this.temporalPort, uiPort: this.uiPort,
      dbFilename: join(this.o.dir, 'temporal.sqlite'), namespace: 'default',
      searchAttributes: TRANSFER_SEARCH_ATTRIBUTES, logFile: join(this.o.dir, 'temporal.log'),
    });
    this.down.delete('temporal');
  }

  async crashTemporal(): Promise<void> {
    this.down.add('temporal');
    this.temporalCrashes++;
    await killTree(this.temporal!.pid);
  }

  startWorker(i: number, faults?: string): void {
    if (faults !== undefined) this.workerFaults[i] = faults;
    const previous = this.workers[i];
    if (previous && alive(previous.pid)) {
      // Never two processes in one slot: the first would be lost to cleanup.
      previous.expectedExit = true;
      signal(-previous.pid, 'SIGKILL');
    }
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...this.o.workerEnv,
      LEDGER_SHARD_URLS: this.shardUrls.join(','),
      TEMPORAL_ADDRESS: this.temporalAddress,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: this.o.taskQueue,
      METRICS_PORT: '0',
      TEMPORAL_METRICS_PORT: '0',
      LOG_LEVEL: 'warn',
      TRANSFER_TEST_FAULTS: this.workerFaults[i]!,
      TRANSFER_TEST_FAULT_LOG: join(this.o.dir, 'faults.log'),
      TRANSFER_TEST_FAULTS_FILE: this.controlFile(i),
      TRANSFER_TEST_WORKFLOW_BUNDLE: this.o.workflowBundle,
    };
    delete env.DATABASE_URL;
    delete env.LEDGER_SLOT_MAP;
    this.workers[i] = spawnGroup(`worker-${i}`, process.execPath, [join(ROOT, 'bin/transfer.js'), 'worker'], { env, cwd: ROOT, logFile: this.workerLog(i) });
    this.workerEpoch[i] = this.temporalCrashes;
    this.bootedWithTemporalDown[i] = this.down.has('temporal');
    this.down.delete(`worker-${i}`);
  }

  workerLog(i: number): string {
    return join(this.o.dir, `worker-${i}.log`);
  }

  async killWorker(i: number): Promise<void> {
    this.down.add(`worker-${i}`);
    const w = this.workers[i];
    if (w) await killGroup(w);
  }

  /** Changes a running worker's test faults through its control file (see src/testing/faults.ts). */
  async setWorkerFaults(i: number, faults: string): Promise<void> {
    await writeControl(this.controlFile(i), faults);
  }

  private controlFile(i: number): string {
    return join(this.o.dir, `faults-worker-${i}.conf`);
  }

  /**
   * A component that exits without being told to is a finding: the worker must ride out database
   * and Temporal restarts. It is reported and started again so the run can go on.
   */
  private async watch(): Promise<void> {
    if (this.stopping || this.watching) return;
    this.watching = true;
    try {
      await this.restartExited();
    } catch (error) {
      this.o.findings.violation({ check: 'restart_failed', message: `could not restart a component that exited: ${(error as Error).message}` });
    } finally {
      this.watching = false;
    }
  }

  private async restartExited(): Promise<void> {
    for (let i = 0; i < this.workers.length; i++) {
      const w = this.workers[i];
      if (!w || w.expectedExit || this.down.has(`worker-${i}`) || (w.child.exitCode === null && w.child.signalCode === null)) continue;
      w.expectedExit = true;
      await sleep(1000); // the exit is seen before the last lines reach the log file
      const log = tail(this.workerLog(i));
      const temporalWasDown = this.workerEpoch[i] !== this.temporalCrashes || this.bootedWithTemporalDown[i] === true;
      if (w.child.exitCode === 3 && /Temporal at \S+ is unreachable/.test(log) && temporalWasDown) {
        // Documented: `transfer worker` exits 3 when Temporal is unreachable at its start (here, killed
        // while the worker was booting, or still down when the worker was started again); a
        // supervisor starts it again, as we do.
        this.o.findings.count('worker exit 3: Temporal down while it started (restarted)');
      } else {
        this.o.findings.violation({ check: 'worker_exited_unexpectedly', message: `${w.name} (pid ${w.pid}) exited on its own (code ${w.child.exitCode}, signal ${w.child.signalCode}); last log lines:\n${log}` });
      }
      // Restart unless a fault has taken the slot meanwhile (it then restarts it itself).
      if (!this.stopping && !this.down.has(`worker-${i}`) && this.workers[i] === w) this.startWorker(i);
    }
    if (this.pg && !this.down.has('postgres') && !alive(this.pg.pid)) {
      this.down.add('postgres');
      this.o.findings.violation({ check: 'postgres_exited_unexpectedly', message: `PostgreSQL (pid ${this.pg.pid}) exited on its own; see ${join(this.o.dir, 'postgres', 'postgres.log')}` });
      await this.startPostgres();
    }
    if (this.temporal && !this.down.has('temporal') && !alive(this.temporal.pid)) {
      this.down.add('temporal');
      this.o.findings.violation({ check: 'temporal_exited_unexpectedly', message: `Temporal dev server (pid ${this.temporal.pid}) exited on its own; see ${join(this.o.dir, 'temporal.log')}` });
      await this.startTemporal();
    }
  }

  /** Normal shutdown: workers drain, then Temporal, then PostgreSQL (fast shutdown). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.monitor) clearInterval(this.monitor);
    await Promise.all(this.workers.flatMap((w) => (w ? [stopGroup(w, 10_000)] : [])));
    await this.temporal?.stop().catch(() => undefined);
    await this.pg?.stop().catch(() => undefined);
  }

  /** Last resort on a signal or crash of the harness: synchronous kill -9 of everything we started. */
  killAllNow(): void {
    this.stopping = true;
    if (this.monitor) clearInterval(this.monitor);
    const pids = [
      ...this.workers.flatMap((w) => (w ? processTree(w.pid) : [])),
      ...(this.temporal ? processTree(this.temporal.pid) : []),
      ...(this.pg ? processTree(this.pg.pid) : []),
    ];
    for (const w of this.workers) if (w) signal(-w.pid, 'SIGKILL');
    for (const pid of pids) signal(pid, 'SIGKILL');
  }
}
