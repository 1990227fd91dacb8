import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { accountOnShard, createTestLedger, type TestLedger } from '../support/ledger.js';
import { eventually, parseJson, runAll, runCli, startCliWorker, type CliResult, type CliWorker } from '../support/cli.js';
import { uniqueTaskQueue } from '../support/temporal.js';

/**
 * Our CLI end to end, as a user runs it: `node bin/transfer.js …` child processes against the dev
 * server and two fresh ledger shards, with `transfer worker` running in its own process. Every
 * command is asserted on its exit code and (with --json) on the one JSON object it prints.
 */
type Json = Record<string, any>;

let t: TestLedger;
let worker: CliWorker | undefined;
let env: Record<string, string>;
const run = (...args: string[]) => runCli(args, env);
const json = async (...args: string[]) => {
  const r = await runCli(['--json', ...args], env);
  return { r, body: parseJson<Json>(r) };
};
const DIGITS = /^-?[0-9]+$/;
const oneLineError = (r: CliResult) => {
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^transfer: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
};

// Unique per run: the dev server (and its visibility) is shared by every file of the run.
const tag = randomBytes(3).toString('hex');
const ids = { alice: '', bob: '', carol: '', frozen: '' };

beforeAll(async () => {
  t = await createTestLedger();
  ids.alice = accountOnShard(t.ledger, 0, `cli-${tag}-alice`);
  ids.bob = accountOnShard(t.ledger, 1, `cli-${tag}-bob`);
  ids.carol = accountOnShard(t.ledger, 1, `cli-${tag}-carol`);
  ids.frozen = accountOnShard(t.ledger, 0, `cli-${tag}-frozen`);
  env = { LEDGER_SHARD_URLS: t.urls.join(','), TEMPORAL_ADDRESS: inject('devServerAddress'), TEMPORAL_NAMESPACE: 'default', TEMPORAL_TASK_QUEUE: uniqueTaskQueue() };
  // Transfers of 1,000.00 USD and more wait for an approval.
  worker = await startCliWorker({ ...env, METRICS_PORT: '0', TEMPORAL_METRICS_PORT: '0', TRANSFER_APPROVAL_THRESHOLD: '100000' });
});

afterAll(async () => {
  const exit = await worker?.stop();
  await t?.drop();
  expect(exit, worker?.log().slice(-2000)).toEqual({ code: 0, signal: null });
});

describe('transfer CLI as a subprocess', () => {
  it('--help on the root and on every command exits 0 and names its options', async () => {
    const cases: [string[], string[]][] = [
      [[], ['--json', '--verbose', 'account', 'send', 'status', 'cancel', 'approve', 'repair', 'list', 'verify', 'worker', 'up']],
      [['up'], ['--demo', '--exit', '--port', '--ui-port', '--metrics-port']],
      [['worker'], []], [['provision'], []], [['reset'], []],
      [['account'], ['open', 'show', 'list', 'deposit', 'withdraw', 'freeze', 'unfreeze', 'close']],
      [['account', 'open'], ['--currency', '--overdraft']],
      [['account', 'show'], []], [['account', 'list'], []],
      [['account', 'deposit'], ['--key']], [['account', 'withdraw'], ['--key']],
      [['account', 'freeze'], []], [['account', 'unfreeze'], []], [['account', 'close'], []],
      [['send'], ['--from', '--to', '--amount', '--currency', '--id', '--memo', '--wait']],
      [['status'], []], [['cancel'], ['--reason']], [['approve'], ['--by']], [['repair'], ['--retry', '--resolve', '--finish', '--by']],
      [['list'], ['--status', '--account', '--limit']], [['verify'], []],
    ];
    const results = await runAll(cases, 3, ([command]) => runCli([...command, '--help'], {}));
    results.forEach((r, i) => {
      const [command, options] = cases[i]!;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`Usage: transfer${command.length ? ` ${command.join(' ')}` : ''}`);
      for (const option of [...options, '--help']) expect(r.stdout).toContain(option);
    });
  });

  it('opens, shows, lists, deposits, withdraws, freezes, unfreezes and closes accounts', async () => {
    const { r: opened, body: a } = await json('account', 'open', ids.alice, '--currency', 'USD');
    expect(opened.code).toBe(0);
    expect(a).toMatchObject({ id: ids.alice, currency: 'USD', status: 'active', posted: '0', pendingDebits: '0', pendingCredits: '0', available: '0', created: true });
    for (const field of ['posted', 'pendingDebits', 'pendingCredits', 'available']) expect(a[field]).toMatch(DIGITS);
    const again = await json('account', 'open', ids.alice, '--currency', 'USD');
    expect([again.r.code, again.body.created, again.body.id]).toEqual([0, false, ids.alice]);

    const [bob, carol, frozen] = await Promise.all([
      json('account', 'open', ids.bob, '--currency', 'USD', '--overdraft', '10.00'),
      json('account', 'open', ids.carol, '--currency', 'USD'),
      json('account', 'open', ids.frozen, '--currency', 'USD'),
    ]);
    expect(bob.body).toMatchObject({ id: ids.bob, posted: '0', available: '1000', overdraftLimit: '1000' });
    expect([carol.r.code, frozen.r.code]).toEqual([0, 0]);
    // Currency codes are case-insensitive; a refusal speaks in currency units, not minor units.
    const lower = await json('account', 'open', `cli-${tag}-lower`, '--currency', 'usd');
    expect([lower.r.code, lower.body.currency]).toEqual([0, 'USD']);
    const overdrawn = await run('account', 'withdraw', ids.bob, '20.00');
    expect(overdrawn.code).not.toBe(0);
    expect(overdrawn.stderr).toMatch(/cannot cover 20\.00 USD/);
    expect(overdrawn.stderr).not.toMatch(/minor units/);

    const deposit = await json('account', 'deposit', ids.alice, '12.34');
    expect([deposit.r.code, deposit.body.posted, deposit.body.available]).toEqual([0, '1234', '1234']);
    const human = await run('account', 'deposit', ids.alice, '5000');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/deposited 5,000\.00 USD/);
    expect(human.stdout).toMatch(/posted\s+5,012\.34 USD/);
    expect(human.stdout).toMatch(/nothing held$/m); // no "-0.00 USD" pending figures
    const withdraw = await json('account', 'withdraw', ids.alice, '2.34');
    expect([withdraw.r.code, withdraw.body.posted]).toEqual([0, '501000']);

    const show = await json('account', 'show', ids.alice);
    expect(show.body).toMatchObject({ id: ids.alice, currency: 'USD', status: 'active', posted: '501000', pendingDebits: '0', pendingCredits: '0', available: '501000' });
    const list = await json('account', 'list');
    expect(list.r.code).toBe(0);
    expect(list.body.items.map((i: Json) => i.id)).toEqual(expect.arrayContaining([ids.alice, ids.bob, ids.carol, ids.frozen]));

    for (const [command, status] of [['freeze', 'frozen'], ['unfreeze', 'active'], ['close', 'closed']] as const) {
      const { r, body } = await json('account', command, ids.carol);
      expect([r.code, body.id, body.status]).toEqual([0, ids.carol, status]);
    }
    expect((await json('account', 'freeze', ids.frozen)).body.status).toBe('frozen');
  });

  it('rejects bad input with exit 2 before connecting to anything', async () => {
    const closed = { LEDGER_SHARD_URLS: 'postgres://x:y@127.0.0.1:1/none', TEMPORAL_ADDRESS: '127.0.0.1:1' };
    const cases: [string[], Record<string, string>][] = [
      [['account', 'open', 'bad id!', '--currency', 'USD'], {}],
      [['account', 'open', 'bad id!', '--currency', 'USD'], closed],
      [['account', 'open', 'fine', '--currency', 'XYZ'], closed],
      [['account', 'open', 'fine', '--currency', 'USD', '--overdraft', '1.001'], closed],
      [['account', 'deposit', 'fine', '3,50'], closed],
      [['account', 'show', 'sys:external:USD'], closed],
      [['send', '--from', 'a', '--to', 'b', '--amount', '12.345', '--currency', 'USD', '--id', `cli-${tag}-bad`], closed],
      [['send', '--from', 'a', '--to', 'a', '--amount', '1', '--currency', 'USD'], closed],
      [['list', '--limit', 'many'], closed],
      [['send', '--from', 'a', '--to', 'b', '--amount', '1', '--currency', 'usdd'], closed],
    ];
    const results = await runAll(cases, 3, ([args, e]) => runCli(['--json', ...args], e));
    for (const r of results) {
      expect(r.code, `${r.args.join(' ')}: ${r.stderr}`).toBe(2);
      oneLineError(r);
      expect(parseJson<Json>(r).error.message).toBe(r.stderr.trim().replace(/^transfer: /, ''));
    }
    expect(parseJson<Json>(results.at(-1)!).error).toMatchObject({ code: 'UNKNOWN_CURRENCY', message: expect.stringContaining('did you mean USD?') });
    // Nothing was started for the refused id.
    const status = await run('status', `cli-${tag}-bad`);
    expect(status.code).toBe(2);
    expect(status.stderr).toMatch(/not found/);
    // 12.345 USD on a real account: refused, nothing written.
    const deposit = await run('account', 'deposit', ids.alice, '12.345');
    expect(deposit.code).toBe(2);
    oneLineError(deposit);
    expect((await json('account', 'show', ids.alice)).body.posted).toBe('501000');
  });

  it('unknown account: exit 2, one line, a stack trace only with --verbose', async () => {
    const [plain, asJson, verbose] = await Promise.all([
      run('account', 'show', `cli-${tag}-nobody`),
      runCli(['--json', 'account', 'show', `cli-${tag}-nobody`], env),
      run('--verbose', 'account', 'show', `cli-${tag}-nobody`),
    ]);
    expect([plain.code, asJson.code, verbose.code]).toEqual([2, 2, 2]);
    oneLineError(plain);
    expect(plain.stderr).toMatch(/does not exist/);
    expect(parseJson<Json>(asJson).error).toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    expect(verbose.stderr).toMatch(/\n\s+at /);
  });

  it('sends: completed with --wait, RUNNING without, refused, compensated, never twice for one --id', async () => {
    const send = (...args: string[]) => json('send', '--from', ids.alice, '--currency', 'USD', ...args);
    const done = await send('--to', ids.bob, '--amount', '12.34', '--wait');
    expect(done.r.code).toBe(0);
    expect(done.body).toMatchObject({ status: 'COMPLETED', from: ids.alice, to: ids.bob, amount: '1234', currency: 'USD', started: true });

    const started = await send('--to', ids.bob, '--amount', '1.00');
    expect(started.r.code).toBe(0);
    expect(started.body).toMatchObject({ status: 'RUNNING', amount: '100', started: true });
    expect(started.body.id).toMatch(/^tr-/);

    const [poor, frozen] = await Promise.all([
      json('send', '--from', ids.bob, '--to', ids.alice, '--amount', '500.00', '--currency', 'USD', '--wait'),
      send('--to', ids.frozen, '--amount', '3.00', '--wait'),
    ]);
    expect(poor.r.code).toBe(1);
    expect(poor.body).toMatchObject({ status: 'FAILED', reason: 'INSUFFICIENT_FUNDS', amount: '50000' });
    expect(frozen.r.code).toBe(1);
    expect(frozen.body).toMatchObject({ status: 'COMPENSATED', reason: 'ACCOUNT_FROZEN' });
    // In human output too: the reason, in currency units; a refused recipient said as such.
    const [poorHuman, frozenHuman] = await Promise.all([run('status', poor.body.id), run('status', frozen.body.id)]);
    expect(poorHuman.code).toBe(1);
    expect(poorHuman.stdout).toMatch(/\n {2}refused: .*500\.00 USD \(INSUFFICIENT_FUNDS\)/);
    expect(poorHuman.stdout).not.toMatch(/minor units/);
    expect(frozenHuman.stdout).toContain(`COMPENSATED (ACCOUNT_FROZEN)  ${ids.alice} → ${ids.frozen}  3.00 USD`);
    expect(frozenHuman.stdout).toMatch(new RegExp(`\\n {2}refused by the recipient ${ids.frozen}: .*frozen \\(ACCOUNT_FROZEN\\); the 3\\.00 USD hold on ${ids.alice} was released`));

    const id = `cli-${tag}-once`;
    const first = await send('--to', ids.bob, '--amount', '2.00', '--id', id, '--wait');
    const second = await send('--to', ids.bob, '--amount', '2.00', '--id', id, '--wait');
    const third = await send('--to', ids.bob, '--amount', '2.00', '--id', id);
    expect([first.r.code, first.body.status, first.body.started]).toEqual([0, 'COMPLETED', true]);
    expect([second.r.code, second.body.status, second.body.started]).toEqual([0, 'COMPLETED', false]);
    expect([third.r.code, third.body.status, third.body.started]).toEqual([0, 'COMPLETED', false]);

    const status = await eventually(async () => {
      const s = await json('status', started.body.id);
      return s.body.status === 'COMPLETED' ? s : undefined;
    });
    expect(status?.r.code).toBe(0);
    expect(status?.body).toMatchObject({ id: started.body.id, status: 'COMPLETED', amount: '100' });
    const human = await run('status', done.body.id);
    expect([human.code, human.stdout.trim()]).toEqual([0, `${done.body.id}  COMPLETED  ${ids.alice} → ${ids.bob}  12.34 USD`]);

    // 501000 − 1234 − 100 − 200 (once) = 499466; bob: 1234 + 100 + 200.
    const [alice, bob, frozenAccount] = await Promise.all([json('account', 'show', ids.alice), json('account', 'show', ids.bob), json('account', 'show', ids.frozen)]);
    expect(alice.body).toMatchObject({ posted: '499466', pendingDebits: '0', available: '499466' });
    expect(bob.body).toMatchObject({ posted: '1534', pendingCredits: '0' });
    expect(frozenAccount.body).toMatchObject({ posted: '0', pendingCredits: '0' });

    // Visibility is eventually consistent: poll a bounded while.
    const listed = await eventually(async () => {
      const { r, body } = await json('list', '--status', 'COMPLETED', '--limit', '1000');
      expect(r.code).toBe(0);
      const found = body.items.map((i: Json) => i.id);
      return [done.body.id, id].every((x) => found.includes(x)) ? body.items as Json[] : undefined;
    });
    expect(listed, 'completed transfers listed').toBeDefined();
    for (const item of listed!) expect(item.status).toBe('COMPLETED');
    const byAccount = await eventually(async () => {
      const { body } = await json('list', '--account', ids.frozen);
      return body.items.some((i: Json) => i.id === frozen.body.id && i.status === 'COMPENSATED') ? body.items as Json[] : undefined;
    });
    expect(byAccount, 'transfers of the frozen account listed').toBeDefined();
    for (const item of byAccount!) expect([item.from, item.to]).toContain(ids.frozen);
  });

  it('approves and cancels transfers waiting for approval', async () => {
    const bigArgs = (id: string) => ['send', '--from', ids.alice, '--to', ids.bob, '--amount', '1000.00', '--currency', 'USD', '--id', id];
    const [approveId, cancelId, waitId] = [`cli-${tag}-approve`, `cli-${tag}-cancel`, `cli-${tag}-wait`];
    // Not silent: send says AWAITING_APPROVAL (not RUNNING) with the commands to approve and to cancel.
    const [sentJson, sentHuman] = await Promise.all([json(...bigArgs(approveId)), run(...bigArgs(cancelId))]);
    expect([sentJson.r.code, sentJson.body.status]).toEqual([0, 'AWAITING_APPROVAL']);
    expect(sentJson.body.next).toEqual({ approve: `npx transfer approve ${approveId} --by <name>`, cancel: `npx transfer cancel ${approveId} --reason "<why>"` });
    expect(sentHuman.code).toBe(0);
    expect(sentHuman.stdout).toContain(`started: ${cancelId}  AWAITING_APPROVAL`);
    expect(sentHuman.stdout).toContain(`\`npx transfer approve ${cancelId} --by <name>\``);
    expect(sentHuman.stdout).toContain(`\`npx transfer cancel ${cancelId} --reason "<why>"\``);
    const awaiting = (id: string) => eventually(async () => ((await json('status', id)).body.status === 'AWAITING_APPROVAL' ? true : undefined));
    expect(await awaiting(approveId)).toBe(true);
    expect(await awaiting(cancelId)).toBe(true);
    const statusHuman = await run('status', cancelId);
    expect(statusHuman.code).toBe(0);
    expect(statusHuman.stdout).toMatch(/AWAITING_APPROVAL/);
    expect(statusHuman.stdout).toContain(`awaiting approval: approve with \`npx transfer approve ${cancelId} --by <name>\``);

    // send --wait says, while it waits, that the transfer awaits approval and how to approve it.
    const waiting = run(...bigArgs(waitId), '--wait');
    expect(await awaiting(waitId)).toBe(true);
    expect((await json('approve', waitId, '--by', 'ops')).r.code).toBe(0);
    const waited = await waiting;
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.stderr).toContain(`${waitId}: awaiting approval: approve with \`npx transfer approve ${waitId} --by <name>\``);
    expect(waited.stdout).toMatch(new RegExp(`^${waitId}  COMPLETED`));

    const approved = await json('approve', approveId, '--by', 'ops');
    expect([approved.r.code, approved.body]).toEqual([0, { id: approveId, approved: true, by: 'ops' }]);
    const cancelled = await json('cancel', cancelId, '--reason', 'changed my mind');
    expect(cancelled.r.code).toBe(0);
    expect(cancelled.body).toMatchObject({ id: cancelId, status: 'CANCELLED', amount: '100000' });

    const completed = await eventually(async () => {
      const s = await json('status', approveId);
      return s.body.status === 'COMPLETED' ? s : undefined;
    });
    expect(completed?.r.code).toBe(0);

    const [again, approveEnded, statusCancelled] = await Promise.all([run('cancel', cancelId), run('approve', cancelId), json('status', cancelId)]);
    expect(again.code).toBe(1);
    oneLineError(again);
    expect(again.stderr).toMatch(/cannot cancel .* already ended CANCELLED/);
    expect(approveEnded.code).toBe(1);
    expect(statusCancelled.r.code).toBe(1);
    expect(statusCancelled.body).toMatchObject({ status: 'CANCELLED' });
    const cancelledHuman = await run('status', cancelId);
    expect(cancelledHuman.stdout).toContain(`${cancelId}  CANCELLED  ${ids.alice}`);
    expect(cancelledHuman.stdout).not.toContain('CANCELLED (CANCELLED)');
    expect(cancelledHuman.stdout).toMatch(/\n {2}cancelled: changed my mind/);

    const unknown = await run('cancel', `cli-${tag}-never`);
    expect(unknown.code).toBe(2);
    expect((await json('account', 'show', ids.alice)).body).toMatchObject({ posted: '299466', pendingDebits: '0' });
  });

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const r = await runCli(['--version'], {});
    expect([r.code, r.stdout.trim()]).toEqual([0, version]);
  });

  it('verify reports a clean ledger', async () => {
    const { r, body } = await json('verify');
    expect(r.code).toBe(0);
    expect(body).toMatchObject({ ok: true, violations: [] });
  });

  it('unreachable dependencies exit 3; bad usage exits 2', async () => {
    const [temporal, workerDown, ledger, missing, unknown, unknownJson] = await Promise.all([
      runCli(['--json', 'status', 'x'], { ...env, TEMPORAL_ADDRESS: '127.0.0.1:1' }),
      runCli(['--json', 'worker'], { ...env, TEMPORAL_ADDRESS: '127.0.0.1:1', METRICS_PORT: '0', TEMPORAL_METRICS_PORT: '0' }),
      runCli(['--json', 'account', 'list'], { ...env, LEDGER_SHARD_URLS: 'postgres://x:y@127.0.0.1:1/none,postgres://x:y@127.0.0.1:1/none' }),
      run('send', '--from', ids.alice),
      run('transmogrify'),
      runCli(['--json', 'transmogrify'], env),
    ]);
    expect([temporal.code, workerDown.code, ledger.code]).toEqual([3, 3, 3]);
    for (const r of [temporal, workerDown, ledger]) {
      oneLineError(r);
      expect(parseJson<Json>(r).error.code).toBe('UNREACHABLE');
    }
    expect([missing.code, unknown.code, unknownJson.code]).toEqual([2, 2, 2]);
    expect(missing.stderr).toMatch(/required option '--to/);
    expect(unknown.stderr).toMatch(/unknown command 'transmogrify'/);
    expect(parseJson<Json>(unknownJson).error.code).toBe('USAGE');
  });
});
