import type { HoldSide } from '../../src/ledger/types.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import {
  BAD_ACCOUNT_IDS, BAD_CURRENCIES, BAD_DECIMALS, BAD_MINOR_UNITS, BAD_TEXT, BAD_TRANSFER_IDS, OVERSIZED, WRONG_TYPES, type BadValue,
} from '../support/bad-values.js';

/**
 * Bad input at each door: the CLI (a subprocess), the workflow input (a raw JSON start, as
 * `temporal workflow start --input` sends it) and the Ledger API. Each case says which field the
 * error must name and, where it matters, the refusal code. Cases the ledger refuses for a business
 * reason (frozen, closed or unknown account, another currency) name the idempotency key under which
 * the ledger records that refusal: the only write bad input may cause.
 */
export interface Fixture {
  tag: string;
  /** Active USD accounts with money, on shards 0 and 1. */
  usd: string;
  usd2: string;
  eur: string;
  frozen: string;
  closed: string;
  unknown: string;
}

interface Expectation {
  label: string;
  /** The error message must match: it names the field (or the account) at fault. */
  names: RegExp;
  code?: string;
  /** Idempotency keys under which a business refusal is recorded (nothing else may change). */
  refusedKeys?: string[];
}

export interface CliCase extends Expectation {
  args: string[];
  /** 2 (invalid input, the default) or 1 (a transfer the ledger refused: FAILED). */
  exit?: 1 | 2;
}

export interface WorkflowCase extends Expectation {
  workflowId: string;
  /** The start's arguments: none, or one raw JSON value. */
  args: unknown[];
}

export interface UpdateCase extends Expectation {
  /** The cancel update's argument, sent to a transfer waiting for approval. */
  request: unknown;
}

export interface LedgerCase extends Expectation {
  call: (ledger: Ledger) => Promise<unknown>;
}

const argv = <T>(values: BadValue<T>[]) => values.filter((b) => b.argv !== false);
const pick = <T>(values: T[], n: number) => values.filter((_, i) => i % Math.ceil(values.length / n) === 0);
const text = (b: BadValue) => b.value as string;

export function cliCases(f: Fixture): CliCase[] {
  const send = (over: Record<string, string>) => {
    const o = { '--from': f.usd, '--to': f.usd2, '--amount': '1.00', '--currency': 'USD', ...over };
    return ['send', ...Object.entries(o).flat()];
  };
  const cases: CliCase[] = [];
  for (const b of argv(BAD_DECIMALS)) cases.push({ label: `send --amount ${b.label}`, args: send({ '--amount': text(b) }), names: /amount/, code: 'INVALID_AMOUNT' });
  for (const b of pick(argv(BAD_DECIMALS), 10)) cases.push({ label: `deposit amount ${b.label}`, args: ['account', 'deposit', f.usd, text(b)], names: /amount/, code: 'INVALID_AMOUNT' });
  for (const b of pick(argv(BAD_DECIMALS), 6)) cases.push({ label: `withdraw amount ${b.label}`, args: ['account', 'withdraw', f.usd, text(b)], names: /amount/, code: 'INVALID_AMOUNT' });
  for (const b of pick(argv(BAD_DECIMALS).filter((d) => !/^zero/.test(d.label)), 8)) {
    cases.push({ label: `open --overdraft ${b.label}`, args: ['account', 'open', `${f.tag}-od`, '--currency', 'USD', '--overdraft', text(b)], names: /overdraft/, code: 'INVALID_AMOUNT' });
  }
  for (const b of argv(BAD_ACCOUNT_IDS) as BadValue<string>[]) {
    cases.push({ label: `send --from ${b.label}`, args: send({ '--from': b.value }), names: /\bfrom\b/, code: 'INVALID_ACCOUNT_ID' });
  }
  for (const b of pick(argv(BAD_ACCOUNT_IDS) as BadValue<string>[], 5)) {
    cases.push({ label: `account open ${b.label}`, args: ['account', 'open', b.value, '--currency', 'USD'], names: /account/, code: 'INVALID_ACCOUNT_ID' });
    cases.push({ label: `send --to ${b.label}`, args: send({ '--to': b.value }), names: /\bto\b/, code: 'INVALID_ACCOUNT_ID' });
    cases.push({ label: `deposit into ${b.label}`, args: ['account', 'deposit', b.value, '1.00'], names: /account/, code: 'INVALID_ACCOUNT_ID' });
    cases.push({ label: `show ${b.label}`, args: ['account', 'show', b.value], names: /account/, code: 'INVALID_ACCOUNT_ID' });
    cases.push({ label: `list --account ${b.label}`, args: ['list', '--account', b.value], names: /account/, code: 'INVALID_ACCOUNT_ID' });
  }
  // The CLI reads a lower-case code as the code (`usd` is USD, tested in cli.test.ts); the workflow
  // input and the ledger's API below stay strict and refuse it.
  for (const b of (argv(BAD_CURRENCIES) as BadValue<string>[]).filter((c) => c.label !== 'lower case')) {
    cases.push({ label: `send --currency ${b.label}`, args: send({ '--currency': b.value }), names: /currency/, code: 'UNKNOWN_CURRENCY' });
    cases.push({ label: `open --currency ${b.label}`, args: ['account', 'open', `${f.tag}-cur`, '--currency', b.value], names: /currency/, code: 'UNKNOWN_CURRENCY' });
  }
  for (const b of pick(argv(BAD_TRANSFER_IDS), 8)) cases.push({ label: `send --id ${b.label}`, args: send({ '--id': b.value }), names: /transfer id/, code: 'INVALID_INPUT' });
  for (const b of pick(argv(BAD_TRANSFER_IDS), 3)) {
    cases.push({ label: `status ${b.label}`, args: ['status', b.value], names: /transfer id/, code: 'INVALID_INPUT' });
    cases.push({ label: `cancel ${b.label}`, args: ['cancel', b.value], names: /transfer id/, code: 'INVALID_INPUT' });
  }
  for (const b of [...argv(BAD_TEXT), { label: '501 characters', value: OVERSIZED.memo }]) {
    cases.push({ label: `send --memo ${b.label}`, args: send({ '--memo': b.value }), names: /memo/, code: 'INVALID_INPUT' });
  }
  for (const b of [...argv(BAD_TEXT), { label: '501 characters', value: OVERSIZED.reason }]) {
    cases.push({ label: `cancel --reason ${b.label}`, args: ['cancel', `${f.tag}-nothing`, '--reason', b.value], names: /reason/, code: 'INVALID_INPUT' });
  }
  for (const b of [...argv(BAD_TEXT), { label: 'empty', value: '' }, { label: '201 characters', value: OVERSIZED.key }]) {
    cases.push({ label: `deposit --key ${b.label}`, args: ['account', 'deposit', f.usd, '1.00', '--key', b.value], names: /--key/, code: 'INVALID_INPUT' });
  }
  cases.push(
    { label: 'send to the same account', args: send({ '--to': f.usd }), names: /same account/, code: 'SAME_ACCOUNT' },
    { label: 'send with an unknown option', args: [...send({}), '--amount-minor', '100'], names: /--amount-minor/, code: 'USAGE' },
    { label: 'send without --to', args: ['send', '--from', f.usd, '--amount', '1.00', '--currency', 'USD'], names: /--to/, code: 'USAGE' },
    { label: 'list --status unknown', args: ['list', '--status', 'PAID'], names: /--status/, code: 'INVALID_INPUT' },
    ...['0', '-1', 'many', '1e3', '1001'].map((n) => ({ label: `list --limit ${n}`, args: ['list', '--limit', n], names: /--limit/ })),
    // Business refusals: a transfer from these accounts starts and ends FAILED, nothing held.
    ...([['frozen', f.frozen, 'ACCOUNT_FROZEN'], ['closed', f.closed, 'ACCOUNT_CLOSED'], ['unknown', f.unknown, 'ACCOUNT_NOT_FOUND']] as const).map(([what, account, code]) => {
      const id = `${f.tag}-cli-${what}`;
      return { label: `send --wait from a ${what} account`, args: [...send({ '--from': account, '--id': id }), '--wait'], exit: 1 as const, names: new RegExp(account), code, refusedKeys: [`${id}:reserve-debit`] };
    }),
    { label: 'send --wait EUR between USD accounts', args: [...send({ '--currency': 'EUR', '--id': `${f.tag}-cli-eur` }), '--wait'], exit: 1, names: /holds USD, not EUR/, code: 'CURRENCY_MISMATCH', refusedKeys: [`${f.tag}-cli-eur:reserve-debit`] },
    { label: 'deposit into an unknown account', args: ['account', 'deposit', f.unknown, '1.00'], names: new RegExp(f.unknown), code: 'ACCOUNT_NOT_FOUND' },
    { label: 'deposit into a frozen account', args: ['account', 'deposit', f.frozen, '1.00', '--key', `${f.tag}-dep-frozen`], names: new RegExp(f.frozen), code: 'ACCOUNT_FROZEN', refusedKeys: [`${f.tag}-dep-frozen`] },
    { label: 'withdraw from a closed account', args: ['account', 'withdraw', f.closed, '1.00', '--key', `${f.tag}-wd-closed`], names: new RegExp(f.closed), code: 'ACCOUNT_CLOSED', refusedKeys: [`${f.tag}-wd-closed`] },
    { label: 'unfreeze a closed account', args: ['account', 'unfreeze', f.closed], names: new RegExp(f.closed), code: 'ACCOUNT_CLOSED' },
    { label: 'open an existing account in another currency', args: ['account', 'open', f.usd, '--currency', 'EUR'], names: new RegExp(f.usd), code: 'ACCOUNT_EXISTS' },
  );
  return cases;
}

export function workflowCases(f: Fixture): WorkflowCase[] {
  const valid = { from: f.usd, to: f.usd2, amount: '100', currency: 'USD' };
  const cases: WorkflowCase[] = [];
  let n = 0;
  const add = (label: string, args: unknown[], names: RegExp, code: string, refused = false) => {
    const workflowId = `${f.tag}-wf-${n++}`;
    cases.push({ label, workflowId, args, names, code, ...(refused ? { refusedKeys: [`${workflowId}:reserve-debit`] } : {}) });
  };
  const field = (name: string, value: unknown) => {
    const input: Record<string, unknown> = { ...valid, [name]: value };
    if (value === undefined) delete input[name]; // "missing", not a key holding undefined
    return [input];
  };
  add('no input at all', [], /transfer input/, 'INVALID_INPUT');
  for (const [label, value] of [['null', null], ['a string', 'alice→bob 1.00'], ['a number', 100], ['an array', [valid]]] as const) add(`input is ${label}`, [value], /transfer input/, 'INVALID_INPUT');
  for (const b of BAD_MINOR_UNITS) add(`amount ${b.label}`, field('amount', b.value), /amount/, 'INVALID_AMOUNT');
  for (const side of ['from', 'to'] as const) {
    for (const b of [...BAD_ACCOUNT_IDS, ...WRONG_TYPES]) add(`${side} ${b.label}`, field(side, b.value), new RegExp(`\\b${side}\\b`), 'INVALID_ACCOUNT_ID');
  }
  for (const b of [...BAD_CURRENCIES, ...WRONG_TYPES]) add(`currency ${b.label}`, field('currency', b.value), /currency/, 'UNKNOWN_CURRENCY');
  for (const b of [...BAD_TEXT, { label: '501 characters', value: OVERSIZED.memo }, ...WRONG_TYPES.filter((w) => w.value !== undefined)]) {
    add(`memo ${b.label}`, field('memo', b.value), /memo/, 'INVALID_INPUT');
  }
  for (const b of BAD_TRANSFER_IDS) add(`transferId ${b.label}`, field('transferId', b.value), /transfer ?id/i, 'INVALID_INPUT');
  add('transferId of another workflow', field('transferId', `${f.tag}-other`), /transfer ?id/i, 'INVALID_INPUT');
  add('transferId a number', field('transferId', 42), /transfer id/, 'INVALID_INPUT');
  add('an unknown extra field', [{ ...valid, amountMinor: '100' }], /"amountMinor"/, 'INVALID_INPUT');
  add('a misspelt field', [{ from: f.usd, to: f.usd2, amount: '100', curency: 'USD' }], /"curency"/, 'INVALID_INPUT');
  add('a field named __proto__', [JSON.parse(`{"from":"${f.usd}","to":"${f.usd2}","amount":"100","currency":"USD","__proto__":{"x":1}}`)], /"__proto__"/, 'INVALID_INPUT');
  add('same account both sides', field('to', f.usd), /same account/, 'SAME_ACCOUNT');
  add('from a frozen account', field('from', f.frozen), new RegExp(f.frozen), 'ACCOUNT_FROZEN', true);
  add('from a closed account', field('from', f.closed), new RegExp(f.closed), 'ACCOUNT_CLOSED', true);
  add('from an unknown account', field('from', f.unknown), new RegExp(f.unknown), 'ACCOUNT_NOT_FOUND', true);
  add('EUR between USD accounts', field('currency', 'EUR'), /holds USD, not EUR/, 'CURRENCY_MISMATCH', true);
  add('from a EUR account in USD', field('from', f.eur), /holds EUR, not USD/, 'CURRENCY_MISMATCH', true);
  return cases;
}

export function updateCases(): UpdateCase[] {
  return [
    ...[...BAD_TEXT, { label: '501 characters', value: OVERSIZED.reason }].map((b) => ({ label: `cancel reason ${b.label}`, request: { reason: b.value }, names: /reason/ })),
    ...WRONG_TYPES.filter((w) => w.value !== undefined && w.value !== null).map((b) => ({ label: `cancel reason ${b.label}`, request: { reason: b.value }, names: /reason/ })),
    { label: 'cancel request with an unknown field', request: { reason: 'x', force: true }, names: /"force"/ },
    { label: 'cancel request that is a string', request: 'stop', names: /cancel request/ },
  ];
}

export function ledgerCases(f: Fixture): LedgerCase[] {
  const cases: LedgerCase[] = [];
  const movement = { accountId: f.usd, amount: '100', currency: 'USD' };
  const hold = { transferId: `${f.tag}-lt`, accountId: f.usd, side: 'debit' as HoldSide, amount: '100', currency: 'USD', ttlMs: 60_000 };
  let n = 0;
  // Every key is of the reservation's transfer (`<transferId>:…`): a hold key must name its own transfer.
  const key = () => `${hold.transferId}:lk-${n++}`;
  const add = (label: string, names: RegExp, code: string, call: (l: Ledger, k: string) => Promise<unknown>, refused = false) => {
    const k = key();
    cases.push({ label, names, code, call: (l) => call(l, k), ...(refused ? { refusedKeys: [k] } : {}) });
  };
  const any = <T>(value: unknown) => value as T;
  for (const b of [...BAD_ACCOUNT_IDS, ...WRONG_TYPES]) {
    add(`openAccount id ${b.label}`, /account/, 'INVALID_ACCOUNT_ID', (l) => l.openAccount({ id: any(b.value), currency: 'USD' }));
    add(`setStatus id ${b.label}`, /account/, 'INVALID_ACCOUNT_ID', (l) => l.setStatus(any(b.value), 'frozen'));
  }
  for (const b of pick([...BAD_ACCOUNT_IDS, ...WRONG_TYPES], 8)) {
    add(`deposit accountId ${b.label}`, /account/, 'INVALID_ACCOUNT_ID', (l, k) => l.deposit({ ...movement, key: k, accountId: any(b.value) }));
    add(`reserve accountId ${b.label}`, /account/, 'INVALID_ACCOUNT_ID', (l, k) => l.reserve({ ...hold, key: k, accountId: any(b.value) }));
    add(`reserve counterparty ${b.label}`, /counterparty/, 'INVALID_ACCOUNT_ID', (l, k) => l.reserve({ ...hold, key: k, counterparty: any(b.value ?? 5) }));
    add(`post accountId ${b.label}`, /account/, 'INVALID_ACCOUNT_ID', (l, k) => l.post({ key: k, holdKey: `${f.tag}-h`, accountId: any(b.value) }));
  }
  for (const b of [...BAD_CURRENCIES, ...WRONG_TYPES]) {
    add(`openAccount currency ${b.label}`, /currency/, 'UNKNOWN_CURRENCY', (l) => l.openAccount({ id: `${f.tag}-c`, currency: any(b.value) }));
    add(`withdraw currency ${b.label}`, /currency/, 'UNKNOWN_CURRENCY', (l, k) => l.withdraw({ ...movement, key: k, currency: any(b.value) }));
  }
  for (const b of BAD_MINOR_UNITS) {
    add(`deposit amount ${b.label}`, /amount/, 'INVALID_AMOUNT', (l, k) => l.deposit({ ...movement, key: k, amount: b.value }));
    add(`reserve amount ${b.label}`, /amount/, 'INVALID_AMOUNT', (l, k) => l.reserve({ ...hold, key: k, amount: b.value }));
  }
  for (const b of BAD_MINOR_UNITS.filter((m) => !/^zero|missing/.test(m.label))) {
    add(`openAccount overdraftLimit ${b.label}`, /overdraft/, 'INVALID_AMOUNT', (l) => l.openAccount({ id: `${f.tag}-o`, currency: 'USD', overdraftLimit: any(b.value) }));
  }
  const badKeys = [...BAD_TEXT, { label: 'empty', value: '' }, { label: '201 characters', value: OVERSIZED.key }, ...WRONG_TYPES];
  for (const b of badKeys) {
    add(`deposit key ${b.label}`, /idempotency key/, 'INVALID_INPUT', (l) => l.deposit({ ...movement, key: any(b.value) }));
    add(`void holdKey ${b.label}`, /hold key/, 'INVALID_INPUT', (l, k) => l.void({ key: k, holdKey: any(b.value), accountId: f.usd }));
  }
  for (const b of pick(badKeys, 5)) {
    add(`reserve key ${b.label}`, /idempotency key/, 'INVALID_INPUT', (l) => l.reserve({ ...hold, key: any(b.value) }));
    add(`post key ${b.label}`, /idempotency key/, 'INVALID_INPUT', (l) => l.post({ key: any(b.value), holdKey: `${f.tag}-h`, accountId: f.usd }));
    add(`refund holdKey ${b.label}`, /hold key/, 'INVALID_INPUT', (l, k) => l.refund({ key: k, holdKey: any(b.value), accountId: f.usd }));
  }
  for (const b of [...BAD_TRANSFER_IDS, ...WRONG_TYPES]) add(`reserve transferId ${b.label}`, /transfer id/, 'INVALID_INPUT', (l, k) => l.reserve({ ...hold, key: k, transferId: any(b.value) }));
  add('reserve under the key of another transfer', /hold key .* does not belong to transfer/, 'INVALID_INPUT', (l) => l.reserve({ ...hold, key: `${f.tag}-other:reserve-debit` }));
  for (const side of ['sideways', 'DEBIT', '', 5, undefined]) add(`reserve side ${String(side)}`, /side/, 'INVALID_INPUT', (l, k) => l.reserve({ ...hold, key: k, side: any(side) }));
  for (const ttl of [0, -1, 1.5, '60000', Number.NaN, Infinity]) add(`reserve ttlMs ${String(ttl)}`, /ttl/, 'INVALID_INPUT', (l, k) => l.reserve({ ...hold, key: k, ttlMs: any(ttl) }));
  for (const status of ['deleted', 'ACTIVE', '', 5, null]) add(`setStatus status ${String(status)}`, /status/, 'INVALID_INPUT', (l) => l.setStatus(f.usd, any(status)));
  add('deposit into an unknown account', new RegExp(f.unknown), 'ACCOUNT_NOT_FOUND', (l, k) => l.deposit({ ...movement, key: k, accountId: f.unknown }), true);
  add('deposit into a frozen account', new RegExp(f.frozen), 'ACCOUNT_FROZEN', (l, k) => l.deposit({ ...movement, key: k, accountId: f.frozen }), true);
  add('withdraw from a closed account', new RegExp(f.closed), 'ACCOUNT_CLOSED', (l, k) => l.withdraw({ ...movement, key: k, accountId: f.closed }), true);
  add('deposit EUR into a USD account', /holds USD, not EUR/, 'CURRENCY_MISMATCH', (l, k) => l.deposit({ ...movement, key: k, currency: 'EUR' }), true);
  add('reserve on a frozen account', new RegExp(f.frozen), 'ACCOUNT_FROZEN', (l, k) => l.reserve({ ...hold, key: k, accountId: f.frozen }), true);
  add('reserve on a closed account', new RegExp(f.closed), 'ACCOUNT_CLOSED', (l, k) => l.reserve({ ...hold, key: k, accountId: f.closed }), true);
  add('reserve on an unknown account', new RegExp(f.unknown), 'ACCOUNT_NOT_FOUND', (l, k) => l.reserve({ ...hold, key: k, accountId: f.unknown }), true);
  add('reserve USD on a EUR account', /holds EUR, not USD/, 'CURRENCY_MISMATCH', (l, k) => l.reserve({ ...hold, key: k, accountId: f.eur }), true);
  add('setStatus of an unknown account', new RegExp(f.unknown), 'ACCOUNT_NOT_FOUND', (l) => l.setStatus(f.unknown, 'frozen'));
  add('unfreeze a closed account', new RegExp(f.closed), 'ACCOUNT_CLOSED', (l) => l.setStatus(f.closed, 'active'));
  add('close an account with money', new RegExp(f.usd), 'ACCOUNT_NOT_EMPTY', (l) => l.setStatus(f.usd, 'closed'));
  add('open an existing account in another currency', new RegExp(f.usd), 'ACCOUNT_EXISTS', (l) => l.openAccount({ id: f.usd, currency: 'EUR' }));
  return cases;
}
