import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSweeper } from '../../src/worker.js';
import { accountOnShard, createTestLedger, type TestLedger } from '../support/ledger.js';

let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger();
});
afterAll(async () => t?.drop());

describe("the worker's sweeper loop", () => {
  it('releases holds nobody posted once they expire, on every shard, and keeps running', async () => {
    const { ledger, clock } = t;
    const a = accountOnShard(ledger, 0, 'sweep-a');
    const b = accountOnShard(ledger, 1, 'sweep-b');
    for (const id of [a, b]) await ledger.openAccount({ id, currency: 'USD' });
    await ledger.deposit({ key: 'sweep-seed', accountId: a, amount: '500', currency: 'USD' });
    await ledger.reserve({ key: 's:reserve-debit', transferId: 's', accountId: a, side: 'debit', amount: '200', currency: 'USD', ttlMs: 60_000 });
    await ledger.reserve({ key: 's:reserve-credit', transferId: 's', accountId: b, side: 'credit', amount: '200', currency: 'USD', ttlMs: 60_000 });
    const stop = startSweeper(ledger, undefined, 50);
    try {
      await new Promise((r) => setTimeout(r, 200));
      expect((await ledger.getAccount(a)).pendingDebits).toBe('200'); // not due yet: untouched
      clock.advance(61_000);
      const deadline = Date.now() + 5_000;
      while ((await ledger.transferRecords('s')).holds.some((h) => h.state === 'pending')) {
        if (Date.now() > deadline) throw new Error('holds were not swept');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await stop();
    }
    const holds = (await ledger.transferRecords('s')).holds;
    expect(holds.map((h) => [h.side, h.state, h.resolvedBy])).toEqual([['debit', 'expired', 'sweeper'], ['credit', 'expired', 'sweeper']]);
    expect((await ledger.getAccount(a)).available).toBe('500');
    expect((await ledger.getAccount(b)).pendingCredits).toBe('0');
    expect((await ledger.verify()).violations).toEqual([]);
  });

  it('stop() waits for a sweep in progress, so the pools close after it and nothing runs later', async () => {
    let sweeps = 0;
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    const slow = { sweepExpired: async () => { sweeps += 1; await blocked; return []; } } as unknown as typeof t.ledger;
    const stop = startSweeper(slow, undefined, 10);
    while (sweeps === 0) await new Promise((r) => setTimeout(r, 5));
    let stopped = false;
    const stopping = stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(stopped).toBe(false); // still inside the sweep
    release();
    await stopping;
    expect(stopped).toBe(true);
    await new Promise((r) => setTimeout(r, 60));
    expect(sweeps).toBe(1); // no sweep was scheduled after stop
  });
});
