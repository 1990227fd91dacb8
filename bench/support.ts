/**
 * Helpers of `npm run bench` (bench/run.ts): a bounded closed-loop driver, CPU and RSS readings
 * from /proc, and the result rows with their table.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface Measured {
  count: number;
  errors: number;
  firstError?: string;
  seconds: number;
  opsPerSec: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

export interface MeasureOptions {
  /** Operations to run (indices 0 … count-1). */
  count: number;
  concurrency: number;
  /** Stop issuing new operations after this long; those in flight finish. Keeps the run bounded. */
  maxSeconds: number;
  label: string;
}

/**
 * Closed loop: `concurrency` lanes, each runs the next index as soon as its previous one is done.
 * Indices are issued in order, so when it stops early the completed ones are exactly 0 … count-1.
 * `op` gets the index and its lane (a lane may own a connection).
 */
export async function measure(options: MeasureOptions, op: (i: number, lane: number) => Promise<void>): Promise<Measured> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const stopAt = started + options.maxSeconds * 1000;
  let lastReport = started;
  await Promise.all(Array.from({ length: options.concurrency }, async (_, lane) => {
    for (;;) {
      if (next >= options.count || performance.now() > stopAt) return;
      const i = next++;
      const t0 = performance.now();
      try {
        await op(i, lane);
        latencies.push(performance.now() - t0);
      } catch (error) {
        errors++;
        firstError ??= (error as Error).message;
      }
      if (performance.now() - lastReport > 5000) {
        lastReport = performance.now();
        process.stderr.write(`  ${options.label}: ${latencies.length + errors}/${options.count}\n`);
      }
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  return { count: latencies.length, errors, ...(firstError ? { firstError } : {}), seconds, opsPerSec: latencies.length / seconds, ...percentiles(latencies) };
}

export function percentiles(values: number[]): { p50Ms: number; p95Ms: number; p99Ms: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
  return { p50Ms: pct(0.5), p95Ms: pct(0.95), p99Ms: pct(0.99) };
}

// ---- /proc ----

let ticks: number | undefined;
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

interface ProcStat { ppid: number; ticks: number }

/** utime+stime of a process (all its threads) plus cutime+cstime (children it has reaped). */
function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name (which may hold spaces), starting at field 3 (state).
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (i: number) => Number(f[i - 3]);
  return { ppid: n(4), ticks: n(14) + n(15) + n(16) + n(17) };
}

/** CPU milliseconds a process has used so far. */
export function cpuMs(pid: number): number {
  return ((procStat(pid)?.ticks ?? 0) * 1000) / clockTicks();
}

/**
 * CPU milliseconds of a process and all its live children (PostgreSQL: the postmaster and every
 * backend and auxiliary process); a child that already exited is in its parent's cutime/cstime.
 */
export function treeCpuMs(root: number): number {
  let total = procStat(root)?.ticks ?? 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat?.ppid === root) total += stat.ticks;
  }
  return (total * 1000) / clockTicks();
}

export function rssMiB(pid: number): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return line ? Number(line.split(/\s+/)[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface CpuPids { temporal?: number; worker: number; postgres: number }
export interface CpuPerOp { temporal: number | null; worker: number; postgres: number }

/** Reads CPU of the three parties now; call the returned function after the row with its op count. */
export function cpuProbe(pids: CpuPids): (ops: number) => CpuPerOp {
  const read = () => ({ temporal: pids.temporal === undefined ? 0 : cpuMs(pids.temporal), worker: cpuMs(pids.worker), postgres: treeCpuMs(pids.postgres) });
  const before = read();
  return (ops) => {
    const after = read();
    const per = (k: keyof typeof before) => round((after[k] - before[k]) / Math.max(1, ops), 3);
    return { temporal: pids.temporal === undefined ? null : per('temporal'), worker: per('worker'), postgres: per('postgres') };
  };
}

// ---- rows ----

export interface Row {
  name: string;
  group: 'temporal-ceiling' | 'e2e' | 'server' | 'postgres' | 'ledger' | 'worker-rss';
  opsPerSec: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  count: number;
  concurrency: number;
  /** opsPerSec ÷ the baseline row's (null when the baseline row was not run, or for the RSS row). */
  ratio: number | null;
  /** Name of the row the ratio divides by. */
  baseline: string | null;
  cpuMsPerOp?: CpuPerOp;
  /** A second comparison besides the baseline: opsPerSec ÷ that row's (batched ÷ unbatched). */
  versus?: { row: string; ratio: number | null };
  /** End-to-end rows: p99 ÷ the p99 of the tuned ceiling row of the same shape and concurrency. */
  p99VsCeiling?: { row: string; ratio: number };
  rssPeakMiB?: number;
  rssIdleMiB?: number;
  notes?: string;
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function row(name: string, group: Row['group'], concurrency: number, m: Measured, baseline: string, notes?: string): Row {
  const allNotes = [notes, m.errors ? `${m.errors} failed (first: ${m.firstError})` : undefined].filter(Boolean).join('; ');
  return {
    name, group, opsPerSec: round(m.opsPerSec, 1), p50Ms: round(m.p50Ms), p95Ms: round(m.p95Ms), p99Ms: round(m.p99Ms), count: m.count, concurrency, ratio: null, baseline,
    ...(allNotes ? { notes: allNotes } : {}),
  };
}

/** Fills each row's ratio from its baseline row (a row named as its own baseline gets 1). */
export function resolveRatios(rows: Row[]): void {
  const byName = new Map(rows.map((r) => [r.name, r]));
  for (const r of rows) {
    const base = r.baseline === null ? undefined : byName.get(r.baseline);
    r.ratio = base?.opsPerSec && r.opsPerSec !== null ? round(r.opsPerSec / base.opsPerSec, 2) : null;
    if (r.versus) {
      const other = byName.get(r.versus.row);
      r.versus.ratio = other?.opsPerSec && r.opsPerSec !== null ? round(r.opsPerSec / other.opsPerSec, 2) : null;
    }
  }
}

export function formatTable(rows: Row[]): string {
  const head = ['row', 'c', 'n', 'ops/s', 'p50 ms', 'p95 ms', 'p99 ms', 'ratio', 'baseline', 'CPU ms/op T/W/PG'];
  const fmt = (v: number | null | undefined, d = 1) => (v === null || v === undefined ? '-' : v.toFixed(d));
  const lines = rows.map((r) => [
    r.name, String(r.concurrency), String(r.count), fmt(r.opsPerSec), fmt(r.p50Ms), fmt(r.p95Ms), fmt(r.p99Ms),
    r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`, r.baseline === r.name ? '(itself)' : (r.baseline ?? '-'),
    r.cpuMsPerOp ? `${fmt(r.cpuMsPerOp.temporal, 2)}/${fmt(r.cpuMsPerOp.worker, 2)}/${fmt(r.cpuMsPerOp.postgres, 2)}` : '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const left = new Set([0, 8]);
  const line = (cells: string[]) => cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out = [line(head)];
  let group = '';
  for (const [i, r] of rows.entries()) {
    if (r.group !== group) {
      group = r.group;
      out.push(`-- ${group}`);
    }
    out.push(line(lines[i]!));
    const versus = r.versus?.ratio ? `${r.versus.ratio.toFixed(2)}x of ${r.versus.row}` : undefined;
    const notes = [versus, r.notes].filter(Boolean).join('; ');
    if (notes) out.push(`     ${notes}`);
  }
  return out.join('\n');
}
