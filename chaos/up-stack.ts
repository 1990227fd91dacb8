import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StackInfo } from '../src/embedded/stack.js';
import { freePort } from '../src/embedded/ports.js';
import type { FaultTarget } from './controller.js';
import type { StackOptions } from './stack.js';
import { alive, killGroup, processTree, signal, sleep, spawnGroup, stopGroup, tail, writeControl, type Supervised } from './processes.js';

/**
 * The real `transfer up` (embedded PostgreSQL, dev server and a worker in one process group), plus
 * extra `transfer worker` processes pointed at it. A stack-kill is kill -9 of up's whole process
 * group, a node crash, and `up` again on the same data directory.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin/transfer.js');

/** The composed stack's options, but for `up`'s own dev server (it brings its own Temporal CLI). */
export type UpStackOptions = Omit<StackOptions, 'temporalCli'>;

export class UpStack implements FaultTarget {
  private up?: Supervised;
  private info?: StackInfo;
  private temporalPort = 0;
  private readonly workers: (Supervised | undefined)[] = [];
  private readonly workerFaults: string[] = [];
  private readonly down = new Set<string>();
  private stopping = false;
  private monitor?: NodeJS.Timeout;
  private watching = false;

  constructor(private readonly o: UpStackOptions) {
    for (let i = 0; i < o.workers; i++) this.workerFaults.push(o.baseFaults);
  }

  get workerCount(): number {
    return this.o.workers;
  }

  get shardUrls(): string[] {
    return this.info!.shardUrls;
  }

  get temporalAddress(): string {
    return this.info!.temporalAddress;
  }

  private env(faults: string): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...this.o.workerEnv,
      TRANSFER_DATA_DIR: join(this.o.dir, 'up'),
      TEMPORAL_TASK_QUEUE: this.o.taskQueue,
      METRICS_PORT: '0',
      TEMPORAL_METRICS_PORT: '0',
      LOG_LEVEL: 'warn',
      TRANSFER_TEST_FAULTS: faults,
      TRANSFER_TEST_FAULT_LOG: join(this.o.dir, 'faults.log'),
      TRANSFER_TEST_WORKFLOW_BUNDLE: this.o.workflowBundle,
    };
    for (const name of ['DATABASE_URL', 'LEDGER_SHARD_URLS', 'LEDGER_SLOT_MAP', 'TEMPORAL_ADDRESS']) delete env[name];
    return env;
  }

  async start(): Promise<void> {
    this.temporalPort = await freePort(19233 + Math.floor(Math.random() * 2000));
    await this.startUp();
    this.monitor = setInterval(() => void this.watch(), 500);
  }

  /** Starts `up` and waits until it says Ready and its stack.json names it. */
  private async startUp(): Promise<void> {
    const logFile = join(this.o.dir, 'up.log');
    const before = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('Ready in').length : 1;
    const args = [BIN, 'up', '--port', String(this.temporalPort), '--ui-port', String(this.temporalPort + 1), '--metrics-port', '0'];
    this.up = spawnGroup('up', process.execPath, args, { env: this.env(this.o.baseFaults), cwd: ROOT, logFile });
    const deadline = Date.now() + 180_000;
    for (;;) {
      if (this.up.child.exitCode !== null) throw new Error(`transfer up exited during start:\n${tail(logFile, 15)}`);
      if (existsSync(logFile) && readFileSync(logFile, 'utf8').split('Ready in').length > before) break;
      if (Date.now() > deadline) throw new Error(`transfer up was not ready within 180 s:\n${tail(logFile, 15)}`);
      await sleep(200);
    }
    this.info = JSON.parse(readFileSync(join(this.o.dir, 'up', 'embedded', 'stack.json'), 'utf8')) as StackInfo;
    if (this.info.pid !== this.up.pid) throw new Error(`stack.json names pid ${this.info.pid}, not the up we started (${this.up.pid})`);
    if (this.info.temporalAddress !== `127.0.0.1:${this.temporalPort}`) throw new Error(`up came back on ${this.info.temporalAddress}, not port ${this.temporalPort} (taken meanwhile)`);
    this.down.delete('up');
  }

  async startWorkers(): Promise<void> {
    for (let i = 0; i < this.o.workers; i++) this.startWorker(i);
  }

  startWorker(i: number, faults?: string): void {
    if (faults !== undefined) this.workerFaults[i] = faults;
    const previous = this.workers[i];
    if (previous && alive(previous.pid)) {
      previous.expectedExit = true;
      signal(-previous.pid, 'SIGKILL');
    }
    const env = {
      ...this.env(this.workerFaults[i]!), LEDGER_SHARD_URLS: this.shardUrls.join(','), TEMPORAL_ADDRESS: this.temporalAddress,
      TRANSFER_TEST_FAULTS_FILE: join(this.o.dir, `faults-worker-${i}.conf`),
    };
    this.workers[i] = spawnGroup(`worker-${i}`, process.execPath, [BIN, 'worker'], { env, cwd: ROOT, logFile: join(this.o.dir, `worker-${i}.log`) });
    this.down.delete(`worker-${i}`);
  }

  async killWorker(i: number): Promise<void> {
    this.down.add(`worker-${i}`);
    const w = this.workers[i];
    if (w) await killGroup(w);
  }

  async setWorkerFaults(i: number, faults: string): Promise<void> {
    await writeControl(join(this.o.dir, `faults-worker-${i}.conf`), faults);
  }

  async crashAll(): Promise<void> {
    this.down.add('up');
    const workers = Array.from({ length: this.o.workers }, (_, i) => this.killWorker(i));
    await Promise.all([...workers, this.up ? killGroup(this.up) : undefined]);
  }

  async restartAll(): Promise<void> {
    await this.startUp();
    await this.startWorkers();
  }

  private async watch(): Promise<void> {
    if (this.stopping || this.watching) return;
    this.watching = true;
    try {
      const up = this.up;
      if (up && !up.expectedExit && !this.down.has('up') && up.child.exitCode !== null) {
        up.expectedExit = true;
        this.o.findings.violation({ check: 'up_exited_unexpectedly', message: `transfer up (pid ${up.pid}) exited on its own (code ${up.child.exitCode}):\n${tail(join(this.o.dir, 'up.log'))}` });
        await this.restartAll();
      }
      for (let i = 0; i < this.workers.length; i++) {
        const w = this.workers[i];
        if (!w || w.expectedExit || this.down.has(`worker-${i}`) || w.child.exitCode === null) continue;
        w.expectedExit = true;
        await sleep(1000); // the exit is seen before the last lines reach the log file
        this.o.findings.violation({ check: 'worker_exited_unexpectedly', message: `${w.name} (pid ${w.pid}) exited on its own (code ${w.child.exitCode}):\n${tail(join(this.o.dir, `worker-${i}.log`))}` });
        if (!this.stopping && !this.down.has(`worker-${i}`) && this.workers[i] === w) this.startWorker(i);
      }
    } catch (error) {
      this.o.findings.violation({ check: 'restart_failed', message: `could not restart a component that exited: ${(error as Error).message}` });
    } finally {
      this.watching = false;
    }
  }

  /** Ctrl-C of `up` (it stops its worker, the dev server and PostgreSQL), and the extra workers. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.monitor) clearInterval(this.monitor);
    await Promise.all(this.workers.flatMap((w) => (w ? [stopGroup(w, 10_000)] : [])));
    if (this.up) {
      this.up.expectedExit = true;
      signal(this.up.pid, 'SIGINT');
      const timer = setTimeout(() => void killGroup(this.up!), 30_000);
      await this.up.exited;
      clearTimeout(timer);
    }
  }

  killAllNow(): void {
    this.stopping = true;
    if (this.monitor) clearInterval(this.monitor);
    const groups = [this.up, ...this.workers].filter((p): p is Supervised => p !== undefined);
    const pids = groups.flatMap((p) => processTree(p.pid));
    for (const p of groups) signal(-p.pid, 'SIGKILL');
    for (const pid of pids) signal(pid, 'SIGKILL');
  }
}
