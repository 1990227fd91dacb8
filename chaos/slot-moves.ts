import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Findings } from './findings.js';
import { killGroup, sleep, spawnGroup, tail } from './processes.js';

/**
 * The slot-move variant of the bank test: while transfers run, slot ranges move back and forth
 * between four shards (two given at start, two added with `transfer shards add`), each move a
 * separate `transfer slots move` process; some are killed with -9 in the middle of a hand-over (an
 * account id committed on the target, not yet let go of by the source) and the same command is run
 * again to resume. Every process is one this run started, killed by its own process group.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface SlotMovesOptions {
  dir: string;
  /** LEDGER_SHARD_URLS of the processes (the seed shards). */
  shardUrls: string[];
  /** Empty databases to register as shards 2, 3, … before moving. */
  newShardUrls: string[];
  moves: number;
  /** Moves whose mover is killed with -9 mid-move (then resumed). */
  kills: number;
  /** Stop starting moves once this returns true (the workload is over). */
  stop: () => boolean;
  findings: Findings;
  log: (line: string) => void;
}

/** Ranges moved in turn, back and forth (seed: shard 0 has 0-8191, shard 1 8192-16383). */
const SCHEDULE: { range: string; to: number }[] = [
  { range: '0-4095', to: 2 },
  { range: '8192-12287', to: 3 },
  { range: '0-4095', to: 1 },
  { range: '12288-16383', to: 2 },
  { range: '8192-12287', to: 0 },
  { range: '0-4095', to: 3 },
  { range: '4096-8191', to: 2 },
  { range: '12288-16383', to: 1 },
];

export interface SlotMoveFigures {
  moves: number;
  kills: number;
  durationsMs: number[];
}

export async function runSlotMoves(o: SlotMovesOptions): Promise<SlotMoveFigures> {
  const figures: SlotMoveFigures = { moves: 0, kills: 0, durationsMs: [] };
  let n = 0;
  const cli = async (name: string, args: string[], extraEnv: Record<string, string> = {}, killWhen?: RegExp) => {
    const logFile = join(o.dir, `${name}.log`);
    const env: NodeJS.ProcessEnv = { ...process.env, LEDGER_SHARD_URLS: o.shardUrls.join(','), ...extraEnv };
    delete env.DATABASE_URL;
    delete env.LEDGER_SLOT_MAP;
    const p = spawnGroup(name, process.execPath, [join(ROOT, 'bin/transfer.js'), '--json', ...args], { env, cwd: ROOT, logFile });
    if (killWhen) {
      for (;;) {
        const exited = await Promise.race([p.exited.then(() => true), sleep(50).then(() => false)]);
        if (exited) break;
        if (killWhen.test(readFileSync(logFile, 'utf8'))) {
          await killGroup(p);
          return { killed: true, code: null, log: logFile };
        }
      }
    }
    const { code } = await p.exited;
    await p.drained; // its last line (the JSON answer) may still be on its way to the log file
    return { killed: false, code, log: logFile };
  };

  for (const [i, url] of o.newShardUrls.entries()) {
    const r = await cli(`shards-add-${i}`, ['shards', 'add', url]);
    if (r.code !== 0) throw new Error(`transfer shards add failed (exit ${r.code}):\n${tail(r.log)}`);
    o.log(`slot moves: registered shard ${2 + i}`);
  }
  for (let i = 0; i < o.moves && !o.stop(); i++) {
    const { range, to } = SCHEDULE[i % SCHEDULE.length]!;
    const kill = i % Math.max(1, Math.floor(o.moves / Math.max(1, o.kills))) === 1 && figures.kills < o.kills;
    const started = Date.now();
    const args = ['slots', 'move', range, '--to', String(to), '--batch', '2'];
    if (kill) {
      // Paused after an id is committed on the target: the kill lands between the two halves of a hand-over.
      const r = await cli(`mover-${++n}`, args, { TRANSFER_TEST_MOVE_PAUSE_MS: '800' }, /test pause: account id \d+/);
      if (r.killed) {
        figures.kills++;
        o.findings.count('slot mover killed mid-move (kill -9)');
        o.log(`slot moves: mover of ${range} -> shard ${to} killed with -9 mid-hand-over; running it again`);
      } else if (r.code !== 0) {
        o.findings.violation({ check: 'slot_move_failed', message: `slots move ${range} --to ${to} exited ${r.code}:\n${tail(r.log)}` });
      }
    }
    const r = await cli(`mover-${++n}`, args);
    if (r.code !== 0) {
      o.findings.violation({ check: 'slot_move_failed', message: `slots move ${range} --to ${to} exited ${r.code}:\n${tail(r.log)}` });
      continue;
    }
    const result = JSON.parse(readFileSync(r.log, 'utf8').trim().split('\n').filter((l) => l.startsWith('{')).pop() ?? '{}') as { state?: string; movedIds?: number };
    if (result.state !== 'done') o.findings.violation({ check: 'slot_move_unfinished', message: `slots move ${range} --to ${to} answered ${JSON.stringify(result)}` });
    figures.moves++;
    figures.durationsMs.push(Date.now() - started);
    o.findings.count('slot moves done');
    o.log(`slot moves: ${range} -> shard ${to} done in ${Date.now() - started} ms (${result.movedIds ?? '?'} account ids in its last run)`);
    await sleep(500);
  }
  return figures;
}
