import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookDispatcher } from '../../src/messaging/webhooks/dispatcher.js';
import { addEndpoint } from '../../src/messaging/webhooks/endpoints.js';
import { readEventsAfter } from '../../src/messaging/webhooks/fanout.js';
import { createMessagingDbs, FAST, insertEvent, scriptedReceiver, waitFor, type MessagingDbs } from './support.js';

let dbs: MessagingDbs;
beforeAll(async () => {
  dbs = await createMessagingDbs(1);
});
afterAll(async () => {
  await dbs?.drop();
});

/** The naive relay: "everything after the highest seq I have seen". */
async function naiveReadAfter(shard: pg.Pool, seq: string): Promise<{ id: string; seq: string }[]> {
  return (await shard.query<{ id: string; seq: string }>('SELECT id::text, seq::text FROM ledger_events WHERE seq > $1::bigint ORDER BY seq', [seq])).rows;
}

/**
 * Transaction A inserts its event first (lower seq, lower txid) but commits after B. Returns the
 * two ids and a function that commits A.
 */
async function lateCommit(shard: pg.Pool): Promise<{ early: string; late: string; commitA: () => Promise<void> }> {
  const a = await shard.connect();
  await a.query('BEGIN');
  const late = await insertEvent(a);
  const early = await insertEvent(shard); // B: its own transaction, committed at once
  return {
    early,
    late,
    async commitA() {
      await a.query('COMMIT');
      a.release();
    },
  };
}

describe('reading ledger_events in commit-safe order', () => {
  it('a seq cursor alone skips an event that commits late (the bug the horizon prevents)', async () => {
    const shard = dbs.shards[0]!;
    const start = (await shard.query<{ s: string }>('SELECT COALESCE(max(seq), 0)::text AS s FROM ledger_events')).rows[0]!.s;
    const { early, late, commitA } = await lateCommit(shard);
    const firstPage = await naiveReadAfter(shard, start);
    expect(firstPage.map((r) => r.id)).toEqual([early]);
    await commitA();
    const secondPage = await naiveReadAfter(shard, firstPage.at(-1)!.seq);
    // The naive cursor moved past A's seq before A committed: A's event is never read.
    expect(secondPage.map((r) => r.id)).not.toContain(late);
  });

  it('the (txid, seq) cursor below the snapshot xmin waits for the late commit and reads both', async () => {
    const shard = dbs.shards[0]!;
    const head = (await shard.query<{ txid: string; seq: string }>('SELECT txid::text, seq::text FROM ledger_events ORDER BY txid DESC, seq DESC LIMIT 1')).rows[0] ?? { txid: '0', seq: '0' };
    const { early, late, commitA } = await lateCommit(shard);
    // A is open: its txid is the horizon, and B (a later txid) stays behind it too.
    let whileOpen: string[];
    try {
      whileOpen = (await readEventsAfter(shard, head, 100)).map((e) => e.id);
    } finally {
      await commitA();
    }
    expect(whileOpen).not.toContain(early);
    expect(whileOpen).not.toContain(late);
    await waitFor('both events below the horizon', async () => (await readEventsAfter(shard, head, 100)).length >= 2);
    const after = (await readEventsAfter(shard, head, 100)).map((e) => e.id);
    // Insertion order within commit-safe order: A's txid is lower, so it comes first.
    expect(after.indexOf(late)).toBeGreaterThanOrEqual(0);
    expect(after.indexOf(late)).toBeLessThan(after.indexOf(early));
  });

  it('the dispatcher delivers a late-committing event, even when a later one was already past', async () => {
    const r = await scriptedReceiver((_h, _req, res) => res.writeHead(200).end());
    await addEndpoint(dbs.messages, { url: r.url, eventTypes: ['*'] });
    const dispatcher = new WebhookDispatcher({ messages: dbs.messages, shards: dbs.shards, settings: FAST });
    dispatcher.start();
    try {
      const before = await insertEvent(dbs.shards[0]!);
      await waitFor('first event delivered', () => r.hits.some((h) => h.id === before));
      const { early, late, commitA } = await lateCommit(dbs.shards[0]!);
      // Let the dispatcher poll several times while A is open.
      await new Promise((resolve) => setTimeout(resolve, 300)).finally(commitA);
      await waitFor('both delivered', () => r.hits.some((h) => h.id === early) && r.hits.some((h) => h.id === late));
      expect(r.hits.filter((h) => h.id === late)).toHaveLength(1);
      expect(r.hits.filter((h) => h.id === early)).toHaveLength(1);
    } finally {
      await dispatcher.stop();
      await r.close();
    }
  });
});
