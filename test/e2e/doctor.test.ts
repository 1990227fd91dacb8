import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestLedger, type TestLedger } from '../support/ledger.js';
import { eventually, parseJson, runCli, startCliWorker, type CliWorker } from '../support/cli.js';
import { uniqueTaskQueue } from '../support/temporal.js';

/**
 * `transfer doctor` (CLI subprocess): every check ok against the dev server, a worker and the test
 * ledger; a namespace without our search attributes named with the command that adds them (and
 * `send` there exits 3 with the server's reason); nothing running → exit 3, "start the stack".
 */
type Json = Record<string, any>;
let t: TestLedger;
let worker: CliWorker | undefined;
let env: Record<string, string>;
let emptyDir: string;
const tag = randomBytes(3).toString('hex');

beforeAll(async () => {
  t = await createTestLedger();
  emptyDir = await mkdtemp(join(tmpdir(), 'transfer-doctor-'));
  env = { LEDGER_SHARD_URLS: t.urls.join(','), TEMPORAL_ADDRESS: inject('devServerAddress'), TEMPORAL_NAMESPACE: 'default', TEMPORAL_TASK_QUEUE: uniqueTaskQueue(), TRANSFER_DATA_DIR: emptyDir };
  worker = await startCliWorker({ ...env, METRICS_PORT: '0', TEMPORAL_METRICS_PORT: '0' });
});

afterAll(async () => {
  await worker?.stop();
  await t?.drop();
  await rm(emptyDir, { recursive: true, force: true });
});

const doctor = async (over: Record<string, string> = {}) => {
  const r = await runCli(['--json', 'doctor'], { ...env, ...over });
  return { r, body: parseJson<Json>(r) };
};

describe('transfer doctor', () => {
  it('all ok against the dev server, a polling worker and migrated shards: exit 0, one line per check', async () => {
    const { r, body } = (await eventually(async () => {
      const d = await doctor();
      return d.body.ok ? d : undefined; // the worker's pollers show up a moment after it started
    }, 20_000)) ?? (await doctor());
    expect(r.code, JSON.stringify(body)).toBe(0);
    expect(body.checks.map((c: Json) => c.check)).toEqual(['temporal', 'namespace', 'search-attributes', 'worker', 'shard 0', 'shard 1', 'shard-identity']);
    for (const c of body.checks) expect(c.ok, c.detail).toBe(true);
    const human = await runCli(['doctor'], env);
    expect(human.code).toBe(0);
    const lines = human.stdout.trim().split('\n');
    expect(lines).toHaveLength(7);
    for (const line of lines) expect(line).toMatch(/^ok {4}/);
    expect(human.stdout).toContain(`Temporal reachable at ${env.TEMPORAL_ADDRESS}`);
  });

  it('a namespace that does not exist, and one without the search attributes: exit 3 with the commands to run', async () => {
    const absent = await doctor({ TEMPORAL_NAMESPACE: `doctor-absent-${tag}` });
    expect(absent.r.code).toBe(3);
    const ns = absent.body.checks.find((c: Json) => c.check === 'namespace');
    expect(ns).toMatchObject({ ok: false, fix: expect.stringContaining(`temporal operator namespace create --namespace doctor-absent-${tag}`) });

    // A namespace created through the API, without our search attributes.
    const bare = `doctor-bare-${tag}`;
    const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS! });
    try {
      await connection.workflowService.registerNamespace({ namespace: bare, workflowExecutionRetentionPeriod: msToTs('1 day') });
    } finally {
      await connection.close();
    }
    const found = await eventually(async () => {
      const d = await doctor({ TEMPORAL_NAMESPACE: bare });
      return d.body.checks.find((c: Json) => c.check === 'namespace')?.ok ? d : undefined;
    }, 30_000);
    expect(found, 'the new namespace is visible').toBeDefined();
    expect(found!.r.code).toBe(3);
    const attributes = found!.body.checks.find((c: Json) => c.check === 'search-attributes');
    expect(attributes.ok).toBe(false);
    expect(attributes.detail).toContain('TransferStatus, FromAccount, ToAccount, Amount, Currency');
    expect(attributes.fix).toContain(`temporal operator search-attribute create --namespace ${bare} --name TransferStatus --type Keyword`);
    expect(attributes.fix).toContain('--name Amount --type Int');
    const human = await runCli(['doctor'], { ...env, TEMPORAL_NAMESPACE: bare });
    expect(human.code).toBe(3);
    expect(human.stdout).toMatch(/^FAIL {2}namespace doctor-bare-\S+ lacks the search attributes .*: `temporal operator search-attribute create/m);

    // send there: not "Failed to start Workflow" alone, but the server's reason, as an environment problem.
    const sent = await runCli(['--json', 'send', '--from', 'a', '--to', 'b', '--amount', '1.00', '--currency', 'USD'], { ...env, TEMPORAL_NAMESPACE: bare });
    expect(sent.code, sent.stderr).toBe(3);
    const error = parseJson<Json>(sent).error;
    expect(error.code).toBe('ENVIRONMENT');
    expect(error.message).toMatch(/search attribute/i);
    expect(error.message).toContain('transfer doctor');
  });

  it('nothing running: exit 3 and says to start the stack', async () => {
    const r = await runCli(['doctor'], { TEMPORAL_ADDRESS: '127.0.0.1:1', TRANSFER_DATA_DIR: emptyDir });
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^FAIL {2}Temporal at 127\.0\.0\.1:1 is unreachable/m);
    expect(r.stdout).toMatch(/^FAIL {2}no ledger configured/m);
    expect(r.stdout).toContain('nothing answers: start the stack: `npm start` or `npx transfer up`');
  });
});
