import type { Command } from 'commander';
import { formatSlotMap, parseSlotRange } from '../../domain/slots.js';
import type { Ledger } from '../../ledger/ledger.js';
import type { MoveRow } from '../../ledger/slot-mover.js';
import { withLedger } from '../context.js';
import { CliError, emit, EXIT, type GlobalOptions } from '../output.js';

/**
 * Shards and slot moves (docs/scaling.md): `shards add URL` registers an empty database as the next
 * shard; `slots move FROM-TO --to N` moves a slot range while transfers run; a mover that died is
 * resumed by running the same command again, or `slots resume`.
 */
function moveLine(m: MoveRow): string {
  const progress = m.state === 'done' ? `${m.movedIds} account id(s) moved, finished ${m.finishedAt}` : `${m.phase}, ${m.movedIds} moved${m.remaining === null ? '' : `, ${m.remaining} left`}, last progress ${m.updatedAt}`;
  return `move #${m.id}  slots ${m.fromSlot}-${m.toSlot}  shard ${m.source} -> ${m.target}  ${m.state.toUpperCase()}  (${progress})`;
}

function shardNumber(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new CliError(`--to must be a shard number (got ${JSON.stringify(text)})`, EXIT.USAGE, 'USAGE');
  return n;
}

export function registerSlotCommands(program: Command, globals: () => GlobalOptions): void {
  const shards = program.command('shards').description('ledger shards: list them, register a new one');

  shards
    .command('add <url>')
    .description('register an empty PostgreSQL database as the next shard (migrated, given an identity, serving no slot until a move)')
    .action(async (url: string) => {
      try {
        new URL(url);
      } catch {
        throw new CliError('the shard URL must be a postgres:// URL', EXIT.USAGE, 'USAGE');
      }
      const { addShard } = await import('../../ledger/slot-mover.js');
      const result = await withLedger((l) => addShard(l, url));
      emit(globals(), result, () => (result.created ? `registered as shard ${result.shard}` : `already registered as shard ${result.shard}`));
    });

  shards
    .command('list')
    .description('registered shards and the slot ranges each serves')
    .action(async () => {
      const { slotStatus } = await import('../../ledger/slot-mover.js');
      const status = await withLedger((l) => slotStatus(l));
      emit(globals(), { items: status.shards }, () => status.shards.map((s) => `shard ${s.shard}  ${s.url}  ${s.ranges.map((r) => `${r.from}-${r.to} ${r.state}`).join(', ') || 'no slots'}`).join('\n'));
    });

  const slots = program.command('slots').description('the slot map, and moving slot ranges between shards while transfers run');

  slots
    .command('move <range>')
    .description('move the accounts of a slot range (FROM-TO) to another shard, online; rerun to resume after a crash')
    .requiredOption('--to <shard>', 'target shard number')
    .option('--batch <n>', 'account ids handed over per batch', '50')
    .action(async (range: string, opts: { to: string; batch: string }) => {
      let parsed: { from: number; to: number };
      try {
        parsed = parseSlotRange(range);
      } catch (error) {
        throw new CliError((error as Error).message, EXIT.USAGE, 'USAGE');
      }
      const target = shardNumber(opts.to);
      const batchSize = Number(opts.batch);
      if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new CliError('--batch must be a positive integer', EXIT.USAGE, 'USAGE');
      const { moveSlots } = await import('../../ledger/slot-mover.js');
      const log = (line: string) => process.stderr.write(`${line}\n`);
      // Test hook (the bank test's kill -9 of a mover mid-move): pause after each id is committed on
      // the target and before the source lets go of it. Inert unless set.
      const pauseMs = Number(process.env.TRANSFER_TEST_MOVE_PAUSE_MS ?? 0);
      const afterTargetCommit = pauseMs > 0
        ? async (n: number) => {
            log(`test pause: account id ${n + 1} committed on the target, not yet let go of by the source (${pauseMs} ms)`);
            await new Promise((r) => setTimeout(r, pauseMs));
          }
        : undefined;
      const move = await withLedger((l) => moveSlots(l, parsed, target, { batchSize, log, ...(afterTargetCommit ? { afterTargetCommit } : {}) }));
      emit(globals(), move, () => moveLine(move));
    });

  slots
    .command('resume [id]')
    .description('finish an interrupted move (all unfinished ones without an id)')
    .action(async (id: string | undefined) => {
      if (id !== undefined && !/^\d+$/.test(id)) throw new CliError(`move id must be a number (got ${JSON.stringify(id)})`, EXIT.USAGE, 'USAGE');
      const { resumeMoves } = await import('../../ledger/slot-mover.js');
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const moves = await withLedger((l) => resumeMoves(l, id === undefined ? undefined : Number(id), { log }));
      emit(globals(), { items: moves }, () => (moves.length ? moves.map(moveLine).join('\n') : 'no unfinished move'));
    });

  slots
    .command('status')
    .description('the slot map (version), each shard\'s ranges and their state, and the latest moves with their progress')
    .action(async () => {
      const { slotStatus } = await import('../../ledger/slot-mover.js');
      const status = await withLedger((l) => slotStatus(l));
      emit(globals(), status, () => [
        `slot map version ${status.version}: ${formatSlotMap(status.map)}`,
        ...status.shards.map((s) => `shard ${s.shard}: ${s.ranges.map((r) => `${r.from}-${r.to} ${r.state}${r.peer === null ? '' : ` (${r.state === 'migrating' ? 'to' : 'from'} shard ${r.peer})`}`).join(', ') || 'no slots'}`),
        ...(status.moves.length ? status.moves.map(moveLine) : ['no moves yet']),
      ].join('\n'));
    });
}
