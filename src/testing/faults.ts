import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import type { TransferActivities } from '../../activities/index.js';

/**
 * TEST-ONLY fault injection for the chaos (bank) test. Inert unless TRANSFER_TEST_FAULTS is set,
 * which nothing but the chaos harness does. Format: comma-separated `name=value`:
 *
 *   lose=0.1      probability that a ledger step's answer is dropped AFTER the step committed: the
 *                 activity fails (retryable) although its effect is in the ledger, like a worker
 *                 that crashed or lost its connection between COMMIT and the reply
 *   pause=200     up to this many ms of sleep after the commit and before the reply, so a kill -9
 *                 of the worker lands between the two more often
 *   skew=-600000  shift this process's clock (Date) by this many ms: a worker with a wrong clock
 *
 * TRANSFER_TEST_FAULTS_FILE names a file that, while it exists, overrides TRANSFER_TEST_FAULTS.
 * TRANSFER_TEST_FAULT_LOG names a file that gets one line per injected fault; the harness counts them.
 * TRANSFER_TEST_WORKFLOW_BUNDLE names a workflow bundle built once by the harness, so a worker the
 * chaos test restarts dozens of times does not rebuild it each time on a small machine.
 */
export interface TestFaults {
  lose: number;
  pauseMs: number;
  skewMs: number;
}

export interface TestHooks {
  wrapActivities?: (a: TransferActivities) => TransferActivities;
  workflowBundle?: { codePath: string };
}

const STEPS = ['reserveDebit', 'reserveCredit', 'postDebit', 'postCredit', 'compensateDebit', 'compensateCredit'] as const;

export function parseTestFaults(spec: string | undefined): TestFaults | undefined {
  if (!spec) return undefined;
  const faults: TestFaults = { lose: 0, pauseMs: 0, skewMs: 0 };
  for (const part of spec.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name, raw] = part.split('=');
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new Error(`TRANSFER_TEST_FAULTS: ${part} is not name=number`);
    if (name === 'lose' && value >= 0 && value < 1) faults.lose = value;
    else if (name === 'pause' && value >= 0) faults.pauseMs = value;
    else if (name === 'skew') faults.skewMs = value;
    else throw new Error(`TRANSFER_TEST_FAULTS: unknown or out-of-range ${part}`);
  }
  return faults;
}

/**
 * Reads the environment at worker start. Always wraps the steps (the wrapper reads the current
 * faults on every call); installs a shifted clock when a skew is asked for or may be asked for.
 * With TRANSFER_TEST_FAULTS_FILE, the file (same format) replaces the faults while it exists, and is
 * re-read every 200 ms: the harness turns faults on and off in a running worker without a restart.
 */
export function installTestFaults(env: NodeJS.ProcessEnv = process.env): TestHooks {
  const initial = parseTestFaults(env.TRANSFER_TEST_FAULTS);
  if (!initial) return {};
  let faults = initial;
  const bundle = env.TRANSFER_TEST_WORKFLOW_BUNDLE ? { workflowBundle: { codePath: env.TRANSFER_TEST_WORKFLOW_BUNDLE } } : {};
  const logFile = env.TRANSFER_TEST_FAULT_LOG;
  const note = (line: string) => {
    if (logFile) appendFileSync(logFile, `${line}\n`);
  };
  const control = env.TRANSFER_TEST_FAULTS_FILE;
  if (control) {
    const reread = () => {
      const text = existsSync(control) ? readFileSync(control, 'utf8').trim() : undefined;
      const next = (text === undefined ? undefined : parseTestFaults(text)) ?? initial;
      if (next.skewMs !== faults.skewMs) note(`skew ${next.skewMs} pid ${process.pid}`);
      faults = next;
    };
    reread();
    setInterval(reread, 200).unref();
  }
  if (control || faults.skewMs !== 0) skewClock(() => faults.skewMs);
  if (!control && faults.skewMs !== 0) note(`skew ${faults.skewMs} pid ${process.pid}`);
  return {
    ...bundle,
    wrapActivities: (activities) => {
      const wrapped = { ...activities } as Record<string, unknown>;
      for (const name of STEPS) {
        const real = activities[name] as (input: { transferId: string }) => Promise<unknown>;
        wrapped[name] = async (input: { transferId: string }) => {
          const result = await real(input);
          const now = faults;
          if (now.pauseMs > 0) await new Promise((r) => setTimeout(r, Math.random() * now.pauseMs));
          if (Math.random() < now.lose) {
            note(`lose ${name} ${input.transferId}`);
            throw new Error(`test fault: the answer of ${name} was lost after it committed`);
          }
          return result;
        };
      }
      return wrapped as TransferActivities;
    },
  };
}

/** Replaces the global Date with one running `skewMs()` ahead (or behind) of the real clock. */
function skewClock(skewMs: () => number): void {
  const Real = Date;
  class SkewedDate extends Real {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(Real.now() + skewMs());
      else if (args.length === 1) super(args[0] as string | number | Date);
      else super(...(args as [number, number, number?, number?, number?, number?, number?]));
    }

    static override now(): number {
      return Real.now() + skewMs();
    }
  }
  globalThis.Date = SkewedDate as DateConstructor;
}
