import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import type { AccountStatus } from '../../domain/accounts.js';
import { assertIdempotencyKey } from '../../domain/input.js';
import { parseDecimal } from '../../domain/money.js';
import { RefusalError } from '../../domain/errors.js';
import { inCurrencyUnits } from '../outcome.js';
import type { Ledger } from '../../ledger/ledger.js';
import type { AccountView } from '../../ledger/types.js';
import { withLedger } from '../context.js';
import { checkAccountId, checkCurrency, checkDecimalSyntax, emit, money, type GlobalOptions } from '../output.js';

function accountJson(a: AccountView) {
  return { id: a.id, currency: a.currency, status: a.status, shard: a.shard, posted: a.posted, pendingDebits: a.pendingDebits, pendingCredits: a.pendingCredits, overdraftLimit: a.overdraftLimit, available: a.available };
}

function accountLine(a: AccountView): string {
  return `${a.id.padEnd(20)} ${a.status.padEnd(7)} shard ${a.shard}  posted ${money(a.posted, a.currency).padStart(16)}  available ${money(a.available, a.currency).padStart(16)}  ${pending(a)}`;
}

/** Held for outgoing and incoming transfers, said only when something is held. */
function pending(a: AccountView): string {
  if (BigInt(a.pendingDebits) === 0n && BigInt(a.pendingCredits) === 0n) return 'nothing held';
  return `held out ${money(a.pendingDebits, a.currency)}, in ${money(a.pendingCredits, a.currency)}`;
}

export function registerAccountCommands(program: Command, globals: () => GlobalOptions): void {
  const account = program.command('account').description('open, inspect and manage ledger accounts');

  account
    .command('open <id>')
    .description('open an account (idempotent: opening it again with the same currency is a no-op)')
    .requiredOption('--currency <code>', 'ISO 4217 currency, e.g. USD')
    .option('--overdraft <amount>', 'overdraft limit as a decimal amount, e.g. 100.00')
    .action(async (id: string, opts: { currency: string; overdraft?: string }) => {
      // Validate everything before connecting: bad input exits 2 with nothing written.
      checkAccountId(id);
      opts.currency = checkCurrency(opts.currency);
      const overdraftLimit = opts.overdraft === undefined || /^0+(?:\.0+)?$/.test(opts.overdraft.trim()) ? undefined : parseDecimal(opts.overdraft, opts.currency, 'overdraft');
      const { account: a, created } = await withLedger((l) => l.openAccount({ id, currency: opts.currency, ...(overdraftLimit ? { overdraftLimit } : {}) }));
      emit(globals(), { ...accountJson(a), created }, () => `${created ? 'opened' : 'already open'}: ${accountLine(a)}`);
    });

  account
    .command('show <id>')
    .description('balances of one account')
    .action(async (id: string) => {
      checkAccountId(id);
      const a = await withLedger((l) => l.getAccount(id));
      emit(globals(), accountJson(a), () => accountLine(a));
    });

  account
    .command('list')
    .description('all customer accounts on every shard')
    .action(async () => {
      const items = await withLedger((l) => l.listAccounts());
      emit(globals(), { items: items.map(accountJson) }, () => (items.length ? items.map(accountLine).join('\n') : 'no accounts'));
    });

  for (const kind of ['deposit', 'withdraw'] as const) {
    account
      .command(`${kind} <id> <amount>`)
      .description(`${kind === 'deposit' ? 'add money from outside' : 'take money out'} (decimal amount in the account currency)`)
      .option('--key <key>', 'idempotency key (default: a new one; pass one to make a retry safe)')
      .action(async (id: string, amount: string, opts: { key?: string }) => {
        checkAccountId(id);
        checkDecimalSyntax(amount); // the exponent check needs the account's currency, below
        if (opts.key !== undefined) assertIdempotencyKey(opts.key, '--key');
        let minor = 0n;
        const a = await withLedger(async (l) => {
          const current = await l.getAccount(id);
          minor = parseDecimal(amount, current.currency);
          const input = { key: opts.key ?? `${kind}-${randomUUID()}`, accountId: id, amount: minor, currency: current.currency };
          await (kind === 'deposit' ? l.deposit(input) : l.withdraw(input)).catch((error: unknown) => {
            // The ledger says "N minor units"; people read currency units (the code stays the same).
            if (error instanceof RefusalError) throw new RefusalError(error.code, inCurrencyUnits(error.message, current.currency), error.details);
            throw error;
          });
          return l.getAccount(id);
        });
        emit(globals(), accountJson(a), () => `${kind === 'deposit' ? 'deposited' : 'withdrew'} ${money(minor.toString(), a.currency)}: ${accountLine(a)}`);
      });
  }

  const statuses: [string, AccountStatus, string][] = [
    ['freeze', 'frozen', 'refuse new reservations, deposits and withdrawals'],
    ['unfreeze', 'active', 'make a frozen account active again'],
    ['close', 'closed', 'close an empty account for good'],
  ];
  for (const [name, status, description] of statuses) {
    account
      .command(`${name} <id>`)
      .description(description)
      .action(async (id: string) => {
        checkAccountId(id);
        const a = await withLedger((l) => l.setStatus(id, status));
        emit(globals(), accountJson(a), () => `${status}: ${accountLine(a)}`);
      });
  }
}
