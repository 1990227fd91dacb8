import { describe, expect, it } from 'vitest';
import { assignRange, checkSlotMap, crc16, evenSlotMap, formatSlotMap, ownersOf, parseSlotMap, parseSlotRange, shardOf, slotOf, SLOT_COUNT } from '../../src/domain/slots.js';

describe('slot sharding', () => {
  it('uses CRC16/XMODEM, the same hash as Redis Cluster', () => {
    // The standard check value of CRC-16/XMODEM.
    expect(crc16('123456789')).toBe(0x31c3);
    expect(slotOf('123456789')).toBe(0x31c3 % SLOT_COUNT);
    expect(crc16('')).toBe(0);
  });

  it('is stable and spreads accounts over the slot space', () => {
    expect(slotOf('alice')).toBe(slotOf('alice'));
    const shards = [0, 0];
    for (let i = 0; i < 2000; i++) shards[shardOf(`acct-${i}`, evenSlotMap(2))]!++;
    expect(shards[0]).toBeGreaterThan(800);
    expect(shards[1]).toBeGreaterThan(800);
  });

  it('parses a slot map that covers every slot exactly once', () => {
    const map = parseSlotMap('8192-16383:1, 0-8191:0', 2);
    expect(formatSlotMap(map)).toBe('0-8191:0,8192-16383:1');
    expect(formatSlotMap(evenSlotMap(2))).toBe('0-8191:0,8192-16383:1');
    expect(formatSlotMap(evenSlotMap(3))).toBe('0-5461:0,5462-10923:1,10924-16383:2');
    expect(formatSlotMap(evenSlotMap(1))).toBe('0-16383:0');
  });

  it('rejects gaps, overlaps, unknown shards and junk', () => {
    expect(() => parseSlotMap('0-8190:0,8192-16383:1', 2)).toThrow(/misses slot 8191/);
    expect(() => parseSlotMap('0-8192:0,8192-16383:1', 2)).toThrow(/overlaps/);
    expect(() => parseSlotMap('0-16383:2', 2)).toThrow(/shard 2/);
    expect(() => parseSlotMap('0-8191:0', 2)).toThrow(/misses slots 8192-16383/);
    expect(() => parseSlotMap('zero-all:0', 1)).toThrow(/FROM-TO:SHARD/);
  });

  it('moving a slot range moves exactly the accounts in it', () => {
    const before = parseSlotMap('0-8191:0,8192-16383:1', 3);
    const after = parseSlotMap('0-8191:0,8192-12000:1,12001-16383:2', 3);
    for (let i = 0; i < 500; i++) {
      const id = `acct-${i}`;
      const slot = slotOf(id);
      const moved = shardOf(id, before) !== shardOf(id, after);
      expect(moved).toBe(slot >= 12001);
    }
  });

  it('moves a range in the map, merging neighbours, and parses ranges to move', () => {
    const map = evenSlotMap(2);
    expect(formatSlotMap(assignRange(map, 0, 4095, 2))).toBe('0-4095:2,4096-8191:0,8192-16383:1');
    expect(formatSlotMap(assignRange(assignRange(map, 0, 4095, 2), 0, 4095, 0))).toBe('0-8191:0,8192-16383:1');
    expect(formatSlotMap(assignRange(map, 8000, 9000, 3))).toBe('0-7999:0,8000-9000:3,9001-16383:1');
    expect(ownersOf(map, 8000, 9000)).toEqual([0, 1]);
    expect(parseSlotRange('0-4095')).toEqual({ from: 0, to: 4095 });
    expect(parseSlotRange('7')).toEqual({ from: 7, to: 7 });
    expect(() => parseSlotRange('4095-0')).toThrow(/reversed/);
    expect(() => parseSlotRange('0-16384')).toThrow(/outside/);
    expect(() => checkSlotMap('0-8191:0,8192-16383:4', 4, 'the control table')).toThrow(/slot map from the control table is refused: .*shard 4, but only 4 exist/);
  });
});
