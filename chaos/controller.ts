import type { Findings } from './findings.js';
import type { FaultSpec } from './plan.js';
import { sleep } from './processes.js';

/** What faults act on: the composed stack (every kind), or `transfer up` plus extra workers. */
export interface FaultTarget {
  readonly workerCount: number;
  killWorker(i: number): Promise<void>;
  startWorker(i: number, faults?: string): void;
  /** Turns test faults on or off in a running worker (and in its restarts) without a restart. */
  setWorkerFaults(i: number, faults: string): Promise<void>;
  /** A node crash: kill -9 of everything at the same instant. */
  crashAll(): Promise<void>;
  /** Everything back on the same data. */
  restartAll(): Promise<void>;
  crashPostgres?(how: 'SIGQUIT' | 'SIGKILL'): Promise<void>;
  startPostgres?(): Promise<void>;
  crashTemporal?(): Promise<void>;
  startTemporal?(): Promise<void>;
}

/**
 * Injects the planned faults one after another, each when the workload has started enough
 * transfers. Every fault ends with the stack whole again (a fault never outlives its window).
 */
export async function runFaults(
  stack: FaultTarget,
  faults: FaultSpec[],
  progress: () => { started: number; done: boolean },
  baseFaults: string,
  findings: Findings,
  log: (line: string) => void,
  onBegin: (fault: FaultSpec) => void,
): Promise<void> {
  for (const fault of faults) {
    while (progress().started < fault.afterStarts) {
      if (progress().done) return; // out of time: the rest of the schedule is skipped
      await sleep(100);
    }
    onBegin(fault);
    const started = Date.now();
    await inject(stack, fault, baseFaults);
    findings.fault(fault.kind);
    log(`fault ${fault.index + 1}/${faults.length} ${describe(fault)} at ${progress().started} started (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
}

export function describe(fault: FaultSpec): string {
  switch (fault.kind) {
    case 'worker-kill': return `worker-kill: kill -9 worker-${fault.worker}, back after ${fault.durationMs} ms`;
    case 'stack-kill': return `stack-kill: kill -9 of every process of the stack at once, back after ${fault.durationMs} ms`;
    case 'pg-restart': return `pg-restart: ${fault.variant} to the postmaster, back after ${fault.durationMs} ms`;
    case 'temporal-restart': return `temporal-restart: kill -9 the dev server, back after ${fault.durationMs} ms`;
    case 'lost-responses': return `lost-responses: worker-${fault.worker} loses answers after commit for ${fault.durationMs} ms`;
    case 'workers-down': return `workers-down: every worker down for ${fault.durationMs} ms (past the hold TTL)`;
    case 'clock-skew': return `clock-skew: worker-${fault.worker} clock ${Number(fault.variant) / 60_000} min off for ${fault.durationMs} ms`;
  }
}

async function inject(stack: FaultTarget, fault: FaultSpec, baseFaults: string): Promise<void> {
  const everyWorker = Array.from({ length: stack.workerCount }, (_, i) => i);
  const withFault = (extra: string) => [baseFaults, extra].filter(Boolean).join(',');
  switch (fault.kind) {
    case 'worker-kill':
      await stack.killWorker(fault.worker);
      await sleep(fault.durationMs);
      stack.startWorker(fault.worker);
      return;
    case 'stack-kill':
      // A node crash: everything dies at the same instant, then comes back on the same data.
      await stack.crashAll();
      await sleep(fault.durationMs);
      await stack.restartAll();
      return;
    case 'pg-restart':
      await stack.crashPostgres!(fault.variant === 'SIGQUIT' ? 'SIGQUIT' : 'SIGKILL');
      await sleep(fault.durationMs);
      await stack.startPostgres!();
      return;
    case 'temporal-restart':
      await stack.crashTemporal!();
      await sleep(fault.durationMs);
      await stack.startTemporal!();
      return;
    case 'lost-responses':
      await stack.setWorkerFaults(fault.worker, withFault('lose=0.3'));
      await sleep(fault.durationMs);
      await stack.setWorkerFaults(fault.worker, baseFaults);
      return;
    case 'workers-down':
      await Promise.all(everyWorker.map((i) => stack.killWorker(i)));
      await sleep(fault.durationMs);
      everyWorker.forEach((i) => stack.startWorker(i));
      return;
    case 'clock-skew':
      await stack.setWorkerFaults(fault.worker, withFault(`skew=${fault.variant}`));
      await sleep(fault.durationMs);
      await stack.setWorkerFaults(fault.worker, baseFaults);
      return;
  }
}
