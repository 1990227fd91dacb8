import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { parseDecimal } from '../../domain/money.js';
import { openLedger } from '../context.js';
import { checkAccountId, checkCurrency, CliError, emit, EXIT, money, type GlobalOptions } from '../output.js';

/**
 * Suspense: money a refund could not pay into its account because the account closed after the
 * debit was posted. `verify` lists it; these commands show and pay it out.
 */
export function registerSuspenseCommands(program: Command, globals: () => GlobalOptions): void {
  const suspense = program.command('suspense').description('money refunded after its account closed: list it, pay it out');

  suspense
    .command('list')
    .description('non-zero suspense balances per shard and currency')
    .action(async () => {
      const ledger = await openLedger();
      try {
        const items = await ledger.suspenseBalances();
        emit(globals(), { items }, () =>
          items.length === 0 ? 'no money in suspense' : items.map((s) => `shard ${s.shard}  ${money(s.amount, s.currency)}  (${s.entries} refund(s))`).join('\n'));
      } finally {
        await ledger.close();
      }
    });

  suspense
    .command('release')
    .description('pay suspense into an open account on the same shard, or out of the ledger (--external)')
    .requiredOption('--currency <code>', 'ISO 4217 currency')
    .requiredOption('--amount <decimal>', 'amount to pay out, e.g. 12.34')
    .option('--to <account>', 'open account on the same shard to credit')
    .option('--shard <n>', 'shard whose suspense pays (required with --external)')
    .option('--external', 'the money was settled outside the ledger (e.g. paid by bank transfer)')
    .option('--key <key>', 'idempotency key (default: a new one); repeating a release with its key pays once')
    .action(async (opts: { currency: string; amount: string; to?: string; shard?: string; external?: boolean; key?: string }) => {
      opts.currency = checkCurrency(opts.currency);
      const amount = parseDecimal(opts.amount, opts.currency);
      if (!opts.to === !opts.external) throw new CliError('give exactly one of --to <account> or --external', EXIT.USAGE, 'USAGE');
      if (opts.to) checkAccountId(opts.to);
      const shard = opts.shard === undefined ? undefined : Number(opts.shard);
      if (shard !== undefined && !(Number.isInteger(shard) && shard >= 0)) throw new CliError(`--shard must be a shard number (got ${opts.shard})`, EXIT.USAGE, 'USAGE');
      if (opts.external && shard === undefined) throw new CliError('--external needs --shard <n>', EXIT.USAGE, 'USAGE');
      const key = opts.key ?? `release-${randomUUID()}`;
      const ledger = await openLedger();
      try {
        const result = await ledger.releaseSuspense({ key, currency: opts.currency, amount, ...(opts.to ? { accountId: opts.to } : {}), ...(shard !== undefined ? { shard } : {}) });
        emit(globals(), { key, replayed: result.replayed, postings: result.postings }, () =>
          `${result.replayed ? 'already released' : 'released'} ${money(amount.toString(), opts.currency)} from suspense to ${opts.to ?? 'outside the ledger'} (key ${key})`);
      } finally {
        await ledger.close();
      }
    });
}
