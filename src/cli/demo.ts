import type { Client } from '@temporalio/client';
import { approveTransfer, cancelTransfer, gateState, startTransfer, transferResult } from '../client.js';
import type { Ledger } from '../ledger/ledger.js';
import { outcomeLine, reasonSuffix } from './outcome.js';
import { money } from './output.js';

/**
 * The demo: a wallet and a savings account on different shards, and a frozen account. Three
 * transfers show the three endings: completed, refused (nothing moved), compensated (debit voided).
 */
export const DEMO_ACCOUNTS = { wallet: 'demo-wallet', savings: 'demo-savings', frozen: 'demo-frozen' } as const;

export interface DemoOutcome {
  id: string;
  label: string;
  status: string;
  reason?: string;
  link: string;
}

export async function runDemo(options: { client: Client; ledger: Ledger; taskQueue: string; webUi: string; namespace: string; producerUrl?: string; print: (line: string) => void }): Promise<DemoOutcome[]> {
  const { client, ledger, print } = options;
  const run = new Date().toISOString().replace(/[-:T.Z]/g, '').slice(0, 14);
  for (const id of Object.values(DEMO_ACCOUNTS)) await ledger.openAccount({ id, currency: 'USD' });
  await ledger.setStatus(DEMO_ACCOUNTS.frozen, 'active').catch(() => undefined);
  await ledger.deposit({ key: `demo-${run}-seed`, accountId: DEMO_ACCOUNTS.wallet, amount: '50000', currency: 'USD' });
  await ledger.setStatus(DEMO_ACCOUNTS.frozen, 'frozen');

  const balances = async () => {
    const rows = await Promise.all(Object.values(DEMO_ACCOUNTS).map((id) => ledger.getAccount(id)));
    return rows.map((a) => `    ${a.id.padEnd(13)} shard ${a.shard}  posted ${money(a.posted, a.currency).padStart(12)}  available ${money(a.available, a.currency).padStart(12)}  ${a.status}`).join('\n');
  };
  print(`\nBalances before:\n${await balances()}`);

  const cases = [
    { label: 'wallet → savings 125.00 USD (cross-shard)', to: DEMO_ACCOUNTS.savings, amount: '12500', suffix: 'ok' },
    { label: 'wallet → savings 1,000,000.00 USD (insufficient funds)', to: DEMO_ACCOUNTS.savings, amount: '100000000', suffix: 'refused' },
    { label: 'wallet → frozen 40.00 USD (credit side refused, debit compensated)', to: DEMO_ACCOUNTS.frozen, amount: '4000', suffix: 'compensated' },
  ];
  const outcomes: DemoOutcome[] = [];
  for (const c of cases) {
    const id = `demo-${run}-${c.suffix}`;
    const started = await startTransfer(client, options.taskQueue, { transferId: id, from: DEMO_ACCOUNTS.wallet, to: c.to, amount: c.amount, currency: 'USD', memo: 'demo' });
    // Under TRANSFER_APPROVAL_THRESHOLD a case may wait for approval: say so, and decide as the demo's approver.
    if ((await gateState(client, id, 10_000))?.status === 'AWAITING_APPROVAL') await decide(client, id, c.label, print);
    const result = await transferResult(started.handle);
    const link = `${options.webUi}/namespaces/${options.namespace}/workflows/${encodeURIComponent(id)}`;
    outcomes.push({ id, label: c.label, status: result.status, ...(result.reason ? { reason: result.reason } : {}), link });
    const why = outcomeLine(result);
    print(`\n  ${c.label}\n    ${result.status}${reasonSuffix(result.status, result.reason)}  steps: ${result.steps.map((s) => `${s.step}:${s.outcome}${s.detail && s.outcome === 'ok' && s.detail !== 'ok' ? `(${s.detail})` : ''}`).join(' → ')}${why ? `\n    ${why}` : ''}\n    ${link}`);
  }
  if (options.producerUrl) outcomes.push(await walletOrder(options, run));
  print(`\nBalances after:\n${await balances()}`);
  const report = await ledger.verify();
  print(`\nLedger verify: ${report.ok ? 'ok' : `${report.violations.length} violation(s)`} — ${report.totals.map((t) => `${t.currency}: customers ${money(t.customers, t.currency)}, in transit ${money(t.clearing, t.currency)}, entered ${money(t.entered, t.currency)}, left ${money(t.left, t.currency)}`).join('; ')}`);
  return outcomes;
}

/** The demo's approver. */
export const DEMO_APPROVER = 'demo-approver';

/**
 * A demo case held at the approval gate is approved by the demo's approver, printing what it did;
 * when TRANSFER_APPROVERS does not list that name the approval is refused, and the case is cancelled.
 */
async function decide(client: Client, id: string, label: string, print: (line: string) => void): Promise<void> {
  print(`\n  ${label}\n    AWAITING_APPROVAL (at or above TRANSFER_APPROVAL_THRESHOLD): \`npx transfer approve ${id} --by <name>\` would approve it`);
  const refused = await approveTransfer(client, id, DEMO_APPROVER).then(() => undefined, (error: Error) => error);
  if (!refused) {
    print(`    approved by ${DEMO_APPROVER} (the demo approves its own case)`);
    return;
  }
  const why = refused.cause instanceof Error ? refused.cause.message : refused.message;
  await cancelTransfer(client, id, `demo: approval by ${DEMO_APPROVER} refused (${why})`);
  print(`    approval by ${DEMO_APPROVER} refused (${why}): cancelled instead`);
}

/**
 * The inbound transactional message: the example wallet service records an order and requests its
 * payout in one transaction of its own database; the relay running in `up` starts the transfer.
 */
async function walletOrder(options: { client: Client; ledger: Ledger; webUi: string; namespace: string; producerUrl?: string; print: (line: string) => void }, run: string): Promise<DemoOutcome> {
  const { createPool } = await import('../db/transaction.js');
  const { placeOrder, requestState } = await import('../messaging/wallet-example.js');
  const pool = createPool(options.producerUrl!, 2);
  try {
    const label = 'wallet service: order + payout request in one local transaction → relay → 7.50 USD';
    const id = await placeOrder(pool, { id: run, customer: 'demo', amount: 750n, currency: 'USD', from: DEMO_ACCOUNTS.wallet, to: DEMO_ACCOUNTS.savings });
    const result = await waitForResult(options.client, id, label, options.print);
    let state = await requestState(pool, id);
    for (let i = 0; i < 50 && state?.state === 'started'; i++) {
      await new Promise((r) => setTimeout(r, 200)); // the relay writes the outcome back within a second or so
      state = await requestState(pool, id);
    }
    const link = `${options.webUi}/namespaces/${options.namespace}/workflows/${encodeURIComponent(id)}`;
    options.print(`\n  ${label}\n    ${result.status}${reasonSuffix(result.status, result.reason)}; the wallet service's row now says: ${state?.state ?? 'missing'}\n    ${link}`);
    return { id, label, status: result.status, ...(result.reason ? { reason: result.reason } : {}), link };
  } finally {
    await pool.end();
  }
}

/** The relay starts the workflow a moment after the commit: wait for it to exist, then for its result. */
async function waitForResult(client: Client, id: string, label: string, print: (line: string) => void) {
  for (let i = 0; ; i++) {
    try {
      await client.workflow.getHandle(id).describe();
      break;
    } catch (error) {
      if ((error as Error).name !== 'WorkflowNotFoundError' || i > 100) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if ((await gateState(client, id, 10_000))?.status === 'AWAITING_APPROVAL') await decide(client, id, label, print);
  return transferResult(client.workflow.getHandle(id) as Parameters<typeof transferResult>[0]);
}

/** More small transfers wallet → savings, to the end (while the demo's webhook receiver is down). */
export async function moreTransfers(client: Client, taskQueue: string, count: number, print: (line: string) => void = () => undefined): Promise<number> {
  const run = new Date().toISOString().replace(/[-:T.Z]/g, '').slice(0, 14);
  let completed = 0;
  for (let i = 0; i < count; i++) {
    const started = await startTransfer(client, taskQueue, { transferId: `demo-${run}-more-${i}`, from: DEMO_ACCOUNTS.wallet, to: DEMO_ACCOUNTS.savings, amount: '100', currency: 'USD', memo: 'demo: receiver down' });
    if ((await gateState(client, started.id, 10_000))?.status === 'AWAITING_APPROVAL') await decide(client, started.id, `wallet → savings 1.00 USD (${started.id})`, print);
    if ((await transferResult(started.handle)).status === 'COMPLETED') completed += 1;
  }
  return completed;
}
