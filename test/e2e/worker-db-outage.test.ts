import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { startTransfer, transferResult } from '../../src/client.js';
import { ephemeralPort } from '../../src/embedded/ports.js';
import { accountOnShard, createTestLedger, type TestLedger } from '../support/ledger.js';
import { startCliWorker, type CliWorker } from '../support/cli.js';
import { uniqueTaskQueue } from '../support/temporal.js';

/**
 * Hole 0 of the reliability issue, on a real `transfer worker` process: PostgreSQL is reached through
 * a TCP proxy this test controls, so the database can be "down" when the worker starts, and every
 * connection can be cut at once while transfers run (what a restart looks like from the client).
 */
class Proxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(readonly port: number, private readonly target: number) {}

  async up(): Promise<void> {
    this.server = createServer((inbound) => {
      const outbound = connect(this.target, '127.0.0.1');
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  /** Every open connection reset at once: the server side of a crash. */
  cut(): void {
    for (const s of this.sockets) s.resetAndDestroy();
  }

  async down(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}

let t: TestLedger;
let proxy: Proxy;
let worker: CliWorker | undefined;
let client: Client;
const tag = randomBytes(3).toString('hex');
const taskQueue = uniqueTaskQueue();

beforeAll(async () => {
  t = await createTestLedger();
  proxy = new Proxy(await ephemeralPort(), Number(new URL(t.urls[0]!).port));
  client = new Client({ connection: await Connection.connect({ address: inject('devServerAddress') }) });
});

afterAll(async () => {
  await worker?.stop();
  await proxy?.down();
  await client?.connection.close();
  await t?.drop();
});

describe('a worker and a database that comes and goes', () => {
  it('starts while PostgreSQL is unreachable, waits with back-off, then serves; rides out every connection being cut', async () => {
    const viaProxy = t.urls.map((u) => {
      const url = new URL(u);
      url.port = String(proxy.port);
      return url.toString();
    });
    let said!: () => void;
    const waiting = new Promise<void>((resolve) => (said = resolve));
    const starting = startCliWorker({
      LEDGER_SHARD_URLS: viaProxy.join(','), TEMPORAL_ADDRESS: inject('devServerAddress'), TEMPORAL_TASK_QUEUE: taskQueue,
      METRICS_PORT: '0', TEMPORAL_METRICS_PORT: '0', LEDGER_ACQUIRE_TIMEOUT_MS: '1000',
    }, 90_000, (output) => (/ledger unavailable .*retry 3 in/.test(output) ? said() : undefined));
    // The database stays away until the worker has said, three times, that it is waiting for it.
    await Promise.race([waiting, starting]);
    await proxy.up();
    worker = await starting;
    expect(worker.log()).toMatch(/ledger unavailable \(transient database fault: connect ECONNREFUSED [^)]*\); retry 3 in/);

    const [from, to] = [accountOnShard(t.ledger, 0, `out-${tag}-a`), accountOnShard(t.ledger, 1, `out-${tag}-b`)];
    for (const id of [from, to]) await t.ledger.openAccount({ id, currency: 'USD' });
    await t.ledger.deposit({ key: `out-${tag}-seed`, accountId: from, amount: '100000', currency: 'USD' });

    // Transfers in flight while every ledger connection of the worker is reset, three times.
    const started = await Promise.all(Array.from({ length: 12 }, (_, i) =>
      startTransfer(client, taskQueue, { transferId: `out-${tag}-${i}`, from, to, amount: String(100 + i), currency: 'USD' })));
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 300));
      proxy.cut();
    }
    const results = await Promise.all(started.map((s) => transferResult(s.handle)));
    expect(results.map((r) => r.status)).toEqual(Array(12).fill('COMPLETED'));
    expect(process.kill(worker.pid, 0)).toBe(true); // still alive
    expect(worker.log()).not.toMatch(/Connection terminated unexpectedly[\s\S]*exit|uncaught/i);

    const total = results.reduce((sum, r) => sum + BigInt(r.amount), 0n);
    expect((await t.ledger.getAccount(to)).posted).toBe(total.toString());
    expect((await t.ledger.verify()).violations).toEqual([]);
    const exit = await worker.stop();
    worker = undefined;
    expect(exit).toEqual({ code: 0, signal: null });
  });
});
