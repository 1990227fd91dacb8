/**
 * `npm run bench:cli`: how long the CLI's simple commands take to answer, as a user runs them
 * (`node bin/transfer.js …`, a fresh process each time), from the sources through tsx (forced with
 * TRANSFER_FROM_SOURCE=1) and compiled (dist/, `npm run build`). Prints one table of p50/p95 ms.
 *
 * `account show` and `status` need a running stack: the bench starts `transfer up` in a data
 * directory of its own (ephemeral ports, deleted at the end), opens two accounts and completes one
 * transfer, then times the commands against it: `status` as a second terminal runs it (answered by
 * the stack's HTTP API) and with TEMPORAL_ADDRESS set (the Temporal client, loaded and asked). A
 * `node -e 0` row gives the floor: the start of a bare Node process on this machine, which no CLI
 * can beat.
 *
 *   npm run bench:cli                  # 15 runs of each command and mode
 *   BENCH_CLI_RUNS=40 npm run bench:cli
 *   BENCH_CLI_STACK=0 npm run bench:cli  # without a stack: --help, --version, env only
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ephemeralPort } from '../src/embedded/ports.js';
// @ts-expect-error plain JavaScript next to the entry point (no declarations): returns a boolean
import { compiledIsCurrent } from '../bin/compiled.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin/transfer.js');
const RUNS = Number(process.env.BENCH_CLI_RUNS ?? 15);
const WITH_STACK = process.env.BENCH_CLI_STACK !== '0';

interface Timing { p50: number; p95: number; exit: number | null }

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** Wall time of one subprocess, from spawn to exit. */
function once(args: string[], env: NodeJS.ProcessEnv): { ms: number; exit: number | null } {
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env, stdio: 'ignore', cwd: ROOT });
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, exit: r.status };
}

function measure(args: string[], env: NodeJS.ProcessEnv): Timing {
  once(args, env); // warm the page cache (and tsx's transform cache) once, unmeasured
  const times: number[] = [];
  let exit: number | null = 0;
  for (let i = 0; i < RUNS; i++) {
    const r = once(args, env);
    times.push(r.ms);
    exit = r.exit;
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p95: percentile(times, 95), exit };
}

function cli(env: NodeJS.ProcessEnv, ...args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) throw new Error(`transfer ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** `transfer up` in its own data directory; resolves once it printed its ready block. */
async function startStack(dataDir: string): Promise<{ env: NodeJS.ProcessEnv; stop: () => Promise<void> }> {
  const env = { ...process.env, TRANSFER_DATA_DIR: dataDir, TEMPORAL_OFFLINE: process.env.TEMPORAL_OFFLINE ?? '1' };
  // With its HTTP API, as `up` runs by default: `status` asks it (stack.json says where).
  const args = ['up', '--port', `${await ephemeralPort()}`, '--ui-port', `${await ephemeralPort()}`, '--metrics-port', '0', '--api-port', `${await ephemeralPort()}`];
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      if (/Ready in /.test(output)) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => reject(new Error(`transfer up exited ${code} before it was ready:\n${output}`)));
    setTimeout(() => reject(new Error(`transfer up not ready after 180 s:\n${output}`)), 180_000).unref();
  });
  return {
    env,
    async stop() {
      if (child.exitCode === null) child.kill('SIGINT');
      await exited;
    },
  };
}

async function main(): Promise<void> {
  if (!(compiledIsCurrent({}) as boolean)) {
    // The "compiled" rows would measure tsx: bin/transfer.js falls back to it for a stale dist/.
    console.error('dist/ is missing or older than the sources: run `npm run build` first');
    process.exit(2);
  }
  const rows: { command: string; args: string[]; env: NodeJS.ProcessEnv }[] = [];
  const base = { ...process.env };
  delete base.TRANSFER_FROM_SOURCE;
  rows.push({ command: '--help', args: ['--help'], env: base });
  rows.push({ command: '--version', args: ['--version'], env: base });
  rows.push({ command: 'env', args: ['env'], env: base });

  let stack: Awaited<ReturnType<typeof startStack>> | undefined;
  let dataDir: string | undefined;
  try {
    if (WITH_STACK) {
      dataDir = await mkdtemp(join(tmpdir(), 'bench-cli-'));
      await chmod(dataDir, 0o755); // PostgreSQL runs as its own user when we are root
      console.error(`starting a stack in ${dataDir}…`);
      stack = await startStack(dataDir);
      const env = { ...stack.env };
      delete env.TRANSFER_FROM_SOURCE;
      const envRow = rows.find((r) => r.command === 'env');
      if (envRow) envRow.env = env; // `transfer env` prints the exports of a running stack
      cli(env, 'account', 'open', 'bench-cli-a', '--currency', 'USD');
      cli(env, 'account', 'open', 'bench-cli-b', '--currency', 'USD');
      cli(env, 'account', 'deposit', 'bench-cli-a', '100.00');
      cli(env, 'send', '--from', 'bench-cli-a', '--to', 'bench-cli-b', '--amount', '1.00', '--currency', 'USD', '--id', 'bench-cli-1', '--wait');
      rows.push({ command: 'account show', args: ['account', 'show', 'bench-cli-a'], env });
      rows.push({ command: 'status', args: ['status', 'bench-cli-1'], env });
      // The same command told where Temporal is: it loads the Temporal client and asks it (the fallback).
      const address = /TEMPORAL_ADDRESS='?([^'\s]+)/.exec(cli(env, 'env'))?.[1];
      if (!address) throw new Error('transfer env printed no TEMPORAL_ADDRESS');
      rows.push({ command: 'status (TEMPORAL_ADDRESS set)', args: ['status', 'bench-cli-1'], env: { ...env, TEMPORAL_ADDRESS: address } });
    }

    console.error(`timing ${RUNS} runs of each command (after one unmeasured run)…`);
    const floor = measure(['-e', '0'], base);
    const table: string[][] = [['command', 'source (tsx) p50', 'p95', 'compiled p50', 'p95', 'exit'], ['node -e 0 (floor)', '', '', floor.p50.toFixed(0), floor.p95.toFixed(0), String(floor.exit)]];
    for (const row of rows) {
      const source = measure([BIN, ...row.args], { ...row.env, TRANSFER_FROM_SOURCE: '1' });
      const compiled = measure([BIN, ...row.args], row.env);
      table.push([`transfer ${row.command}`, source.p50.toFixed(0), source.p95.toFixed(0), compiled.p50.toFixed(0), compiled.p95.toFixed(0), compiled.exit === source.exit ? String(compiled.exit) : `${source.exit}/${compiled.exit}`]);
    }
    const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
    const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
    console.log(line(table[0]!));
    console.log(`|${widths.map((w, i) => (i === 0 ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `)).join('|')}|`);
    for (const r of table.slice(1)) console.log(line(r));
    console.log(`\nms, ${RUNS} runs each, wall time of \`node bin/transfer.js …\` from spawn to exit; load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  } finally {
    await stack?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
