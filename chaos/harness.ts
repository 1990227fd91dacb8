import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { describeTransfer } from '../src/client.js';
import { evenSlotMap } from '../src/domain/slots.js';
import { Ledger } from '../src/ledger/ledger.js';
import { resolveDevServer } from '../src/temporal/binaries.js';
import { WORKFLOWS_PATH } from '../src/worker.js';
import { checkRun } from './checks.js';
import { runFaults } from './controller.js';
import { Findings, type ChaosViolation } from './findings.js';
import { FAULT_KINDS, makePlan, type FaultKind, type Plan } from './plan.js';
import { runSlotMoves } from './slot-moves.js';
import { ComposedStack } from './stack.js';
import { UpStack } from './up-stack.js';
import { Workload } from './workload.js';

export interface ChaosOptions {
  /** composed: PostgreSQL, Temporal and workers as separate processes; up: the real `transfer up` plus extra workers. */
  stack: 'composed' | 'up';
  seed: number;
  transfers: number;
  accounts: number;
  concurrency: number;
  faults: number;
  faultKinds: readonly FaultKind[];
  workers: number;
  durationLimitMs: number;
  holdTtlMs: number;
  faultWindowMs: number;
  approvalTimeoutMs: number;
  /** The slot-move variant: shards added while running, slot ranges moved back and forth, movers killed. */
  slotMoves?: { extraShards: number; moves: number; kills: number };
  /** Keep the data directory (it is always kept when there are violations). */
  keep: boolean;
  log: (line: string) => void;
}

/** `up` owns its PostgreSQL and dev server: they can only die with it (stack-kill). */
export const UP_FAULT_KINDS: readonly FaultKind[] = ['stack-kill', 'worker-kill', 'lost-responses', 'clock-skew'];

export const DEFAULTS: Omit<ChaosOptions, 'log'> = {
  stack: 'composed', seed: 1, transfers: 2000, accounts: 40, concurrency: 16, faults: 25, faultKinds: FAULT_KINDS,
  workers: 3, durationLimitMs: 20 * 60_000, holdTtlMs: 10_000, faultWindowMs: 16_000, approvalTimeoutMs: 20_000, keep: false,
};

export interface ChaosSummary {
  seed: number;
  transfers: number;
  outcomes: Record<string, number>;
  /** Why the transfers that did not complete ended as they did. */
  reasons: Record<string, number>;
  faults: Record<string, number>;
  counters: Record<string, number>;
  violations: ChaosViolation[];
  wallSeconds: number;
  dir: string;
}

/** Base worker faults: a short pause between commit and answer widens the window kill -9 can hit. */
const BASE_FAULTS = 'pause=40';

export async function runChaos(o: ChaosOptions): Promise<ChaosSummary> {
  const started = Date.now();
  const lines: string[] = [];
  const userLog = o.log;
  o = { ...o, log: (line) => {
    lines.push(`${new Date().toISOString()} ${line}`);
    userLog(line);
  } };
  const findings = new Findings(o.log);
  const plan = makePlan({ seed: o.seed, transfers: o.transfers, accounts: o.accounts, faults: o.faults, kinds: o.faultKinds, workers: o.workers, holdTtlMs: o.holdTtlMs, faultWindowMs: o.faultWindowMs });
  const dir = await mkdtemp(`/tmp/chaos-${o.seed}-`);
  await chmod(dir, 0o755); // PostgreSQL runs as an unprivileged user when we are root
  const cli = await resolveDevServer({ progress: o.log, offline: true });
  if (!cli.path) throw new Error('the chaos test needs the Temporal CLI as a file (run `node bin/transfer.js provision`)');
  const taskQueue = `chaos-${o.seed}`;
  const workflowBundle = join(dir, 'workflow-bundle.js');
  await writeFile(workflowBundle, (await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') })).code);
  const workerEnv = {
    TRANSFER_APPROVAL_THRESHOLD: plan.approvalThreshold.toString(),
    TRANSFER_APPROVAL_TIMEOUT_MS: String(o.approvalTimeoutMs),
    TRANSFER_HOLD_TTL_MS: String(o.holdTtlMs),
  };
  if (o.stack === 'up') {
    const unsupported = o.faultKinds.filter((k) => !UP_FAULT_KINDS.includes(k));
    if (unsupported.length > 0) throw new Error(`--stack up supports the fault kinds ${UP_FAULT_KINDS.join(', ')} (not ${unsupported.join(', ')})`);
  }
  const common = { dir, workers: o.workers, taskQueue, workflowBundle, baseFaults: BASE_FAULTS, findings, log: o.log, workerEnv };
  if (o.slotMoves && o.stack === 'up') throw new Error('slot moves run with the composed stack only');
  const extraDatabases = Array.from({ length: o.slotMoves?.extraShards ?? 0 }, (_, i) => `chaos_${2 + i}`);
  const stack = o.stack === 'up' ? new UpStack(common) : new ComposedStack({ ...common, temporalCli: cli.path, extraDatabases });
  const killOnExit = () => stack.killAllNow();
  process.once('exit', killOnExit);
  let connection: Connection | undefined;
  let keep = o.keep;
  try {
    o.log(`chaos: ${o.stack} stack, seed ${o.seed}, ${o.transfers} transfers, ${plan.accounts.length} accounts, ${plan.faults.length} faults, ${o.workers} workers, data ${dir}`);
    await stack.start();
    await setUpAccounts(plan, stack.shardUrls);
    await stack.startWorkers();
    connection = await Connection.connect({ address: stack.temporalAddress });
    const client = new Client({ connection, namespace: 'default' });

    // Most of the time for the workload, the rest to let everything end and to check.
    const deadline = started + o.durationLimitMs * 0.8;
    const workload = new Workload(() => client, taskQueue, plan, findings, deadline);
    let done = false;
    // Transfer i waits until every fault planned before it has begun (faults stay sequential).
    let begun = 0;
    const gate = async (i: number) => {
      while (begun < plan.faults.length && plan.faults[begun]!.afterStarts < i && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    };
    const moves = o.slotMoves && stack instanceof ComposedStack
      ? runSlotMoves({ dir, shardUrls: stack.shardUrls, newShardUrls: stack.extraShardUrls, moves: o.slotMoves.moves, kills: o.slotMoves.kills, stop: () => Date.now() > deadline, findings, log: o.log })
      : undefined;
    const faults = runFaults(stack, plan.faults, () => ({ started: workload.started, done: done && Date.now() > deadline }), BASE_FAULTS, findings, o.log, () => begun++);
    await workload.run(o.concurrency, gate, o.log).finally(() => (done = true));
    o.log(`workload: all ${workload.started} started; waiting for the remaining faults and transfers`);
    await faults;
    const figures = await moves;
    await workload.collect(started + o.durationLimitMs * 0.92, o.concurrency);
    if (figures && figures.durationsMs.length > 0) {
      const sorted = [...figures.durationsMs].sort((a, b) => a - b);
      findings.count('slot move ms p50', sorted[Math.floor(sorted.length / 2)]!);
      findings.count('slot move ms max', sorted[sorted.length - 1]!);
    }
    const unsent = workload.records.filter((r) => !r.started).length;
    if (unsent > 0) {
      findings.count('not sent: the time limit came first', unsent);
      o.log(`time limit: ${unsent} transfers were never sent (not checked); raise --duration-limit`);
    }
    for (const r of workload.records.filter((x) => x.started && !x.result && !x.closedAs).slice(0, 20)) {
      const view = await describeTransfer(client, r.spec.id).catch((e: Error) => ({ status: 'unknown', message: e.message }));
      o.log(`not ended: ${r.spec.id} (${r.spec.kind}) ${view.status} ${view.message ?? ''}`);
    }

    const ledger = Ledger.connect({ shardUrls: stack.shardUrls, slotMap: evenSlotMap(2), poolSize: 2 });
    try {
      await ledger.checkIdentity(); // every registered shard, added ones included
      await checkRun(plan, workload.records.filter((r) => r.started), ledger, client, taskQueue, findings);
    } finally {
      await ledger.close();
    }
    countInjected(join(dir, 'faults.log'), findings);
    const latencies = workload.records.flatMap((r) => (r.latencyMs === undefined ? [] : [r.latencyMs])).sort((a, b) => a - b);
    if (latencies.length > 0) {
      findings.count('latency p50 ms', latencies[Math.floor(latencies.length / 2)]!);
      findings.count('latency max ms', latencies[latencies.length - 1]!);
    }
  } catch (error) {
    keep = true;
    throw error;
  } finally {
    await connection?.close().catch(() => undefined);
    await stack.stop().catch((e: Error) => o.log(`stopping the stack: ${e.message}`));
    stack.killAllNow(); // anything that ignored the polite stop
    process.removeListener('exit', killOnExit);
    if (findings.violations.length > 0) keep = true;
    await writeFile(join(dir, 'chaos.log'), `${lines.join('\n')}\n`).catch(() => undefined);
    if (!keep) await rm(dir, { recursive: true, force: true });
    else o.log(`data kept in ${dir} (logs: chaos.log, worker-*.log, temporal.log, postgres/postgres.log, faults.log)`);
  }
  const outcomes: Record<string, number> = {};
  const reasons: Record<string, number> = {};
  const counters: Record<string, number> = {};
  for (const [k, v] of findings.counters) {
    if (k.startsWith('outcome ')) outcomes[k.slice(8)] = v;
    else if (k.startsWith('reason ')) reasons[k.slice(7)] = v;
    else counters[k] = v;
  }
  return { seed: o.seed, transfers: o.transfers, outcomes, reasons, faults: Object.fromEntries(findings.faults), counters, violations: findings.violations, wallSeconds: (Date.now() - started) / 1000, dir };
}

async function setUpAccounts(plan: Plan, shardUrls: string[]): Promise<void> {
  const ledger = Ledger.connect({ shardUrls, slotMap: evenSlotMap(2), poolSize: 4 });
  try {
    await ledger.migrate();
    for (const a of plan.accounts) {
      await ledger.openAccount({ id: a.id, currency: a.currency });
      await ledger.deposit({ key: `chaos-seed-${a.id}`, accountId: a.id, amount: a.initial.toString(), currency: a.currency });
      if (a.frozen) await ledger.setStatus(a.id, 'frozen');
    }
  } finally {
    await ledger.close();
  }
}

/** The workers note each injected lost answer and clock skew in faults.log. */
function countInjected(file: string, findings: Findings): void {
  if (!existsSync(file)) return;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('lose ')) findings.count('answers lost after commit (injected)');
    if (line.startsWith('skew ') && !line.startsWith('skew 0 ')) findings.count('clock skews applied');
  }
}

export function formatSummary(s: ChaosSummary): string {
  const list = (o: Record<string, number>) => Object.entries(o).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const faultTotal = Object.values(s.faults).reduce((a, b) => a + b, 0);
  return [
    `seed:        ${s.seed}`,
    `transfers:   ${s.transfers} (${list(s.outcomes)})`,
    `reasons:     ${list(s.reasons)}`,
    `faults:      ${faultTotal} (${list(s.faults)})`,
    `observed:    ${list(s.counters)}`,
    `violations:  ${s.violations.length}`,
    ...s.violations.slice(0, 30).map((v) => `  - ${v.check}${v.transfer ? ` ${v.transfer}` : ''}${v.account ? ` ${v.account}` : ''}: ${v.message}`),
    `wall time:   ${s.wallSeconds.toFixed(1)} s`,
  ].join('\n');
}
