import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { evenSlotMap } from '../../src/domain/slots.js';
import { Ledger } from '../../src/ledger/ledger.js';

/** A controllable clock: the database's time plus an offset a test can move forward (hold expiry). */
export class TestClock {
  offsetMs = 0;
  readonly offset = () => this.offsetMs;
  readonly now = () => new Date(Date.now() + this.offsetMs);
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export interface TestLedger {
  ledger: Ledger;
  clock: TestClock;
  databases: string[];
  urls: string[];
  /** Closes the pools and drops the databases. */
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * Two fresh shard databases cloned from the migrated template: isolated per test file, and fast
 * (a file copy, not a migration run).
 */
export async function createTestLedger(shards = 2, options: { poolSize?: number } = {}): Promise<TestLedger> {
  const admin = new pg.Client({ connectionString: inject('pgUrl') });
  await admin.connect();
  const id = randomBytes(4).toString('hex');
  const databases = Array.from({ length: shards }, (_, i) => `t_${id}_s${i}`);
  try {
    for (const db of databases) {
      for (let attempt = 0; ; attempt++) {
        try {
          await admin.query(`CREATE DATABASE ${db} TEMPLATE ${inject('templateDb')}`);
          break;
        } catch (error) {
          // 55006: another file is cloning the template at this instant.
          if ((error as { code?: string }).code !== '55006' || attempt > 50) throw error;
          await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
        }
      }
    }
  } finally {
    await admin.end();
  }
  const clock = new TestClock();
  const urls = databases.map((db) => withDatabase(inject('pgUrl'), db));
  const ledger = Ledger.connect({ shardUrls: urls, slotMap: evenSlotMap(shards), clockOffsetMs: clock.offset, poolSize: options.poolSize ?? 20 });
  return {
    ledger,
    clock,
    databases,
    urls,
    async drop() {
      await ledger.close();
      const c = new pg.Client({ connectionString: inject('pgUrl') });
      await c.connect();
      for (const db of databases) await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Account ids guaranteed to land on a given shard (so cross-shard tests are cross-shard). */
export function accountOnShard(ledger: Ledger, shard: number, prefix: string): string {
  for (let i = 0; i < 10_000; i++) {
    const id = `${prefix}-${i}`;
    if (ledger.shardFor(id).shard === shard) return id;
  }
  throw new Error(`no id with prefix ${prefix} maps to shard ${shard}`);
}
