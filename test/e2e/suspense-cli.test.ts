import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountOnShard, createTestLedger, type TestLedger } from '../support/ledger.js';
import { parseJson, runCli } from '../support/cli.js';

/** The operator's view of suspense through the CLI, as a subprocess: verify points at it, list shows it, release pays it out. */
let t: TestLedger;
let env: Record<string, string>;
beforeAll(async () => {
  t = await createTestLedger();
  env = { LEDGER_SHARD_URLS: t.urls.join(',') };
});
afterAll(async () => t?.drop());

describe('transfer suspense and verify', () => {
  it('a refund into a closed account shows in verify and suspense list, and is paid out once with release', async () => {
    const { ledger } = t;
    const from = accountOnShard(ledger, 0, 'cli-susp-from');
    const payee = accountOnShard(ledger, 0, 'cli-susp-payee');
    for (const id of [from, payee]) await ledger.openAccount({ id, currency: 'USD' });
    await ledger.deposit({ key: 'cli-susp-seed', accountId: from, amount: '400', currency: 'USD' });
    const debit = await ledger.reserve({ key: 'cs-1:reserve-debit', transferId: 'cs-1', accountId: from, side: 'debit', amount: '400', currency: 'USD', ttlMs: 60_000 });
    await ledger.post({ key: 'cs-1:post-debit', holdKey: debit.key, accountId: from, transferId: 'cs-1' });
    await ledger.setStatus(from, 'closed');
    await ledger.refund({ key: 'cs-1:refund-debit', holdKey: debit.key, accountId: from, transferId: 'cs-1' });

    const verify = await runCli(['verify'], env);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain('attention: 4.00 USD in suspense on shard 0');
    const list = await runCli(['--json', 'suspense', 'list'], env);
    expect(parseJson(list)).toEqual({ items: [{ shard: 0, currency: 'USD', amount: '400', entries: 1 }] });

    const bad = await runCli(['suspense', 'release', '--currency', 'USD', '--amount', '4.00'], env);
    expect(bad.code).toBe(2); // neither --to nor --external
    const release = ['--json', 'suspense', 'release', '--currency', 'USD', '--amount', '4.00', '--to', payee, '--key', 'cs-release-1'];
    const first = await runCli(release, env);
    expect(first.code, first.stderr).toBe(0);
    expect(parseJson(first)).toMatchObject({ key: 'cs-release-1', replayed: false });
    expect(parseJson(await runCli(release, env))).toMatchObject({ replayed: true });
    expect((await ledger.getAccount(payee)).posted).toBe('400');
    expect(parseJson(await runCli(['--json', 'suspense', 'list'], env))).toEqual({ items: [] });
    const after = parseJson<{ ok: boolean; attention: { suspense: unknown[] } }>(await runCli(['--json', 'verify', '--transit-grace', '0'], env));
    expect(after).toMatchObject({ ok: true, attention: { suspense: [] } });
  });
});
