/**
 * Slot sharding: account id → one of 16384 slots by CRC16 (XMODEM, the polynomial Redis Cluster uses),
 * then slot → shard by a range map from configuration. The hash is stable across processes and
 * languages, so moving a slot range between shards moves exactly the accounts in it.
 */
export const SLOT_COUNT = 16384;

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    table[i] = crc;
  }
  return table;
})();

export function crc16(text: string): number {
  const bytes = new TextEncoder().encode(text);
  let crc = 0;
  for (const byte of bytes) {
    crc = ((crc << 8) & 0xffff) ^ (CRC16_TABLE[((crc >> 8) ^ byte) & 0xff] ?? 0);
  }
  return crc;
}

export function slotOf(accountId: string): number {
  return crc16(accountId) % SLOT_COUNT;
}

/**
 * The order in which one transaction locks several accounts of a shard: by slot, then by id (UTF-16
 * code units, the same in every process). Step batches and the sweeper follow it, and the slot mover
 * locks slot rows in slot order, so none of them can wait on another in a cycle.
 */
export function compareLockOrder(a: string, b: string): number {
  const bySlot = slotOf(a) - slotOf(b);
  if (bySlot !== 0) return bySlot;
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface SlotRange {
  from: number;
  to: number;
  shard: number;
}

/**
 * Parses "0-8191:0,8192-16383:1". Every slot must be covered exactly once, so a typo in the map is a
 * start-up error rather than accounts silently landing on the wrong database.
 */
export function parseSlotMap(text: string, shardCount: number): SlotRange[] {
  const ranges: SlotRange[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const match = /^(\d+)-(\d+):(\d+)$/.exec(part);
    if (!match) throw new Error(`slot map entry ${JSON.stringify(part)} is not FROM-TO:SHARD`);
    const [from, to, shard] = [Number(match[1]), Number(match[2]), Number(match[3])];
    if (from > to || to >= SLOT_COUNT) throw new Error(`slot range ${part} is outside 0-${SLOT_COUNT - 1}`);
    if (shard >= shardCount) throw new Error(`slot range ${part} names shard ${shard}, but only ${shardCount} exist`);
    ranges.push({ from, to, shard });
  }
  ranges.sort((a, b) => a.from - b.from);
  let next = 0;
  for (const range of ranges) {
    if (range.from !== next) {
      throw new Error(`slot map ${range.from > next ? 'misses' : 'overlaps at'} slot ${next}`);
    }
    next = range.to + 1;
  }
  if (next !== SLOT_COUNT) throw new Error(`slot map misses slots ${next}-${SLOT_COUNT - 1}`);
  return ranges;
}

/** Even split of the slot space over `shardCount` shards. */
export function evenSlotMap(shardCount: number): SlotRange[] {
  const size = Math.ceil(SLOT_COUNT / shardCount);
  return Array.from({ length: shardCount }, (_, shard) => ({
    from: shard * size,
    to: Math.min(SLOT_COUNT, (shard + 1) * size) - 1,
    shard,
  }));
}

export function formatSlotMap(ranges: SlotRange[]): string {
  return ranges.map((r) => `${r.from}-${r.to}:${r.shard}`).join(',');
}

export function shardOf(accountId: string, ranges: readonly SlotRange[]): number {
  const slot = slotOf(accountId);
  for (const range of ranges) {
    if (slot >= range.from && slot <= range.to) return range.shard;
  }
  throw new Error(`slot ${slot} is not mapped to a shard`);
}

/**
 * A slot map from the database (or anywhere a map is not typed by a person): parsed like the
 * environment's, and every shard it names must be one the cluster has.
 */
export function checkSlotMap(text: string, shardCount: number, source: string): SlotRange[] {
  try {
    return parseSlotMap(text, shardCount);
  } catch (error) {
    throw new Error(`slot map from ${source} is refused: ${(error as Error).message}`, { cause: error });
  }
}

/** Parses "FROM-TO" or a single slot into an inclusive range of slots. */
export function parseSlotRange(text: string): { from: number; to: number } {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  if (!match) throw new Error(`slot range ${JSON.stringify(text)} is not FROM-TO (e.g. 0-4095)`);
  const from = Number(match[1]);
  const to = match[2] === undefined ? from : Number(match[2]);
  if (from > to || to >= SLOT_COUNT) throw new Error(`slot range ${text} is outside 0-${SLOT_COUNT - 1} or reversed`);
  return { from, to };
}

/** The map with slots from..to given to `shard`; adjacent ranges of one shard merged. */
export function assignRange(ranges: readonly SlotRange[], from: number, to: number, shard: number): SlotRange[] {
  const out: SlotRange[] = [];
  for (const r of ranges) {
    if (r.to < from || r.from > to) out.push({ ...r });
    else {
      if (r.from < from) out.push({ from: r.from, to: from - 1, shard: r.shard });
      if (r.to > to) out.push({ from: to + 1, to: r.to, shard: r.shard });
    }
  }
  out.push({ from, to, shard });
  out.sort((a, b) => a.from - b.from);
  const merged: SlotRange[] = [];
  for (const r of out) {
    const last = merged[merged.length - 1];
    if (last && last.shard === r.shard && last.to + 1 === r.from) last.to = r.to;
    else merged.push({ ...r });
  }
  return merged;
}

/** The shards owning any slot of from..to. */
export function ownersOf(ranges: readonly SlotRange[], from: number, to: number): number[] {
  return [...new Set(ranges.filter((r) => !(r.to < from || r.from > to)).map((r) => r.shard))].sort((a, b) => a - b);
}
