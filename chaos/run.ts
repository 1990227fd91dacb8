/**
 * The bank test: random concurrent transfers under injected process faults, with the ledger's and
 * Temporal's books compared at the end. Exit 0 with no violation, 1 with any, 2 on bad usage.
 *
 *   npm run chaos -- --seed 7 --transfers 5000 --faults 60
 */
import { parseArgs } from 'node:util';
import { DEFAULTS, formatSummary, runChaos, UP_FAULT_KINDS } from './harness.js';
import { FAULT_KINDS, type FaultKind } from './plan.js';

const HELP = `usage: npm run chaos -- [options]
  --stack composed|up    composed (default): PostgreSQL, Temporal and each worker as separate processes;
                         up: the real \`transfer up\` (killed as a whole process group) plus extra workers
  --seed N               seed of the workload and the fault schedule (default: random; printed)
  --transfers N          transfers to run (default ${DEFAULTS.transfers})
  --accounts N           accounts over both shards (default ${DEFAULTS.accounts})
  --concurrency N        transfers in flight (default ${DEFAULTS.concurrency})
  --faults N             faults to inject (default ${DEFAULTS.faults})
  --kinds a,b            fault kinds (default all: ${FAULT_KINDS.join(', ')})
  --workers N            worker processes (default ${DEFAULTS.workers}; with --stack up, besides up's own)
  --duration-limit S     hard limit on the whole run, in seconds (default ${DEFAULTS.durationLimitMs / 1000})
  --hold-ttl-ms N        hold lifetime the workers use (default ${DEFAULTS.holdTtlMs})
  --fault-window-ms N    longest lost-responses / clock-skew window (default ${DEFAULTS.faultWindowMs})
  --keep                 keep the data directory (always kept when a violation is found)`;

function positiveInt(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min} (got ${value})`);
  return n;
}

let exitCode = 0;
try {
  const { values } = parseArgs({
    options: {
      stack: { type: 'string' }, seed: { type: 'string' }, transfers: { type: 'string' }, accounts: { type: 'string' }, concurrency: { type: 'string' },
      faults: { type: 'string' }, kinds: { type: 'string' }, workers: { type: 'string' }, 'duration-limit': { type: 'string' },
      'hold-ttl-ms': { type: 'string' }, 'fault-window-ms': { type: 'string' }, keep: { type: 'boolean' }, help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const stack = values.stack ?? 'composed';
  if (stack !== 'composed' && stack !== 'up') throw new Error(`--stack must be composed or up (got ${stack})`);
  const kinds = values.kinds ? values.kinds.split(',').map((k) => k.trim()) : [...(stack === 'up' ? UP_FAULT_KINDS : FAULT_KINDS)];
  for (const k of kinds) if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new Error(`unknown fault kind ${k} (known: ${FAULT_KINDS.join(', ')})`);
  const options = {
    stack: stack as 'composed' | 'up',
    seed: positiveInt('seed', values.seed, Math.floor(Math.random() * 1_000_000), 0),
    transfers: positiveInt('transfers', values.transfers, DEFAULTS.transfers),
    accounts: positiveInt('accounts', values.accounts, DEFAULTS.accounts, 8),
    concurrency: positiveInt('concurrency', values.concurrency, DEFAULTS.concurrency),
    faults: positiveInt('faults', values.faults, DEFAULTS.faults, 0),
    faultKinds: kinds as FaultKind[],
    workers: positiveInt('workers', values.workers, DEFAULTS.workers),
    durationLimitMs: positiveInt('duration-limit', values['duration-limit'], DEFAULTS.durationLimitMs / 1000) * 1000,
    holdTtlMs: positiveInt('hold-ttl-ms', values['hold-ttl-ms'], DEFAULTS.holdTtlMs),
    faultWindowMs: positiveInt('fault-window-ms', values['fault-window-ms'], DEFAULTS.faultWindowMs),
    approvalTimeoutMs: DEFAULTS.approvalTimeoutMs,
    keep: values.keep ?? false,
    log: (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`),
  };
  // Past the duration limit the run is abandoned: everything it started is killed on exit.
  const limit = setTimeout(() => {
    process.stderr.write(`chaos: duration limit of ${options.durationLimitMs / 1000} s exceeded; seed ${options.seed}\n`);
    process.exit(1);
  }, options.durationLimitMs + 60_000);
  limit.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130)); // the harness kills its processes on exit
  const summary = await runChaos(options);
  console.log(formatSummary(summary));
  exitCode = summary.violations.length === 0 ? 0 : 1;
} catch (error) {
  process.stderr.write(`chaos: ${(error as Error).stack ?? error}\n`);
  exitCode = (error as Error).message.startsWith('--') || (error as Error).message.startsWith('unknown fault') ? 2 : 1;
}
process.exit(exitCode);
