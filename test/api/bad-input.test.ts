import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { BAD_ACCOUNT_IDS, BAD_CURRENCIES, BAD_MINOR_UNITS, BAD_TEXT, BAD_TRANSFER_IDS, OVERSIZED, WRONG_TYPES, type BadValue } from '../support/bad-values.js';
import { accountOnShard } from '../support/ledger.js';
import { ledgerChanges, snapshotLedger, unexpectedChanges } from '../support/ledger-snapshot.js';
import { expectSchema, http, useApiServer, type Answer } from './support.js';

/**
 * The bad-input catalogue (test/support/bad-values.ts) through the HTTP API: every case is a problem
 * detail (application/problem+json, the schema, the code the CLI gives) naming the field at fault,
 * no transfer starts under any key tried, and every table of both shards is unchanged row for row
 * but for the refusal records the ledger keeps by design.
 */
const h = useApiServer();
const tag = `apibad-${randomBytes(3).toString('hex')}`;
const f = { usd: '', usd2: '', frozen: '', eur: '' };

beforeAll(async () => {
  f.usd = accountOnShard(h.t.ledger, 0, `${tag}-usd`);
  f.usd2 = accountOnShard(h.t.ledger, 1, `${tag}-usd`);
  f.frozen = `${tag}-frozen`;
  f.eur = `${tag}-eur`;
  for (const id of [f.usd, f.usd2, f.frozen]) await h.t.ledger.openAccount({ id, currency: 'USD' });
  await h.t.ledger.openAccount({ id: f.eur, currency: 'EUR' });
  await h.t.ledger.deposit({ key: `${tag}-seed`, accountId: f.usd, amount: '100000', currency: 'USD' });
  await h.t.ledger.setStatus(f.frozen, 'frozen');
});

interface Case {
  label: string;
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
  status: number;
  code: string;
  names: RegExp;
  /** Idempotency keys under which the ledger records a business refusal (the only write allowed). */
  refusedKeys?: string[];
}

/** Header values fetch can send at all (no controls, no non-ASCII). */
const headerSafe = (values: BadValue<string>[]) => values.filter((b) => /^[\x20-\x7e]*$/.test(b.value));

function cases(): { list: Case[]; transferKeys: string[] } {
  const list: Case[] = [];
  const transferKeys: string[] = [];
  let n = 0;
  const valid = { from: f.usd, to: f.usd2, amount: '100', currency: 'USD' };
  const create = (label: string, body: unknown, status: number, code: string, names: RegExp, extra: Partial<Case> = {}) => {
    const key = `${tag}-k${n++}`;
    transferKeys.push(key);
    list.push({ label: `POST /v1/transfers ${label}`, method: 'POST', path: '/v1/transfers', body, headers: { 'idempotency-key': key }, status, code, names, ...extra });
  };
  const field = (name: string, value: unknown) => {
    const body: Record<string, unknown> = { ...valid, [name]: value };
    if (value === undefined) delete body[name];
    return body;
  };
  for (const b of BAD_MINOR_UNITS) create(`amount ${b.label}`, field('amount', b.value), 400, 'INVALID_AMOUNT', /amount/);
  for (const side of ['from', 'to']) {
    for (const b of [...BAD_ACCOUNT_IDS, ...WRONG_TYPES]) create(`${side} ${b.label}`, field(side, b.value), 400, 'INVALID_ACCOUNT_ID', new RegExp(`\\b${side}\\b`));
  }
  for (const b of [...BAD_CURRENCIES, ...WRONG_TYPES]) create(`currency ${b.label}`, field('currency', b.value), 400, 'UNKNOWN_CURRENCY', /currency/);
  for (const b of [...BAD_TEXT, { label: '501 characters', value: OVERSIZED.memo }, ...WRONG_TYPES.filter((w) => w.value !== undefined)]) {
    create(`memo ${b.label}`, field('memo', b.value), 400, 'INVALID_INPUT', /memo/);
  }
  for (const b of [...BAD_TEXT, { label: '101 characters', value: OVERSIZED.by }, { label: 'empty', value: '' }]) create(`requestedBy ${b.label}`, field('requestedBy', b.value), 400, 'INVALID_INPUT', /requestedBy/);
  create('an unknown extra field', { ...valid, amountMinor: '100' }, 400, 'INVALID_INPUT', /"amountMinor"/);
  create('transferId in the body', { ...valid, transferId: `${tag}-x` }, 400, 'INVALID_INPUT', /"transferId"/);
  create('a misspelt field', { from: f.usd, to: f.usd2, amount: '100', curency: 'USD' }, 400, 'INVALID_INPUT', /curency/);
  create('same account both sides', field('to', f.usd), 400, 'SAME_ACCOUNT', /same account/);
  for (const [label, value] of [['null', null], ['a string', 'alice→bob'], ['a number', 100], ['an array', [valid]]] as const) create(`body is ${label}`, value, 400, 'INVALID_INPUT', /body/);
  const raw = (label: string, text: string, status: number, code: string, names: RegExp, headers: Record<string, string> = {}) => {
    const key = `${tag}-k${n++}`;
    transferKeys.push(key);
    list.push({ label: `POST /v1/transfers ${label}`, method: 'POST', path: '/v1/transfers', raw: text, headers: { 'idempotency-key': key, ...headers }, status, code, names });
  };
  raw('malformed JSON', '{"from": "a",', 400, 'MALFORMED_JSON', /JSON/);
  raw('trailing garbage', `${JSON.stringify(valid)} x`, 400, 'MALFORMED_JSON', /JSON/);
  raw('single quotes', "{'from': 'a'}", 400, 'MALFORMED_JSON', /JSON/);
  raw('empty body', '', 400, 'MALFORMED_JSON', /empty/);
  raw('a __proto__ member', `{"from":"${f.usd}","to":"${f.usd2}","amount":"100","currency":"USD","__proto__":{"x":1}}`, 400, 'MALFORMED_JSON', /JSON/);
  raw('a huge body (20 KiB)', JSON.stringify({ ...valid, memo: 'm'.repeat(20 * 1024) }), 413, 'PAYLOAD_TOO_LARGE', /larger/);
  raw('a 1 MiB body', JSON.stringify({ ...valid, memo: 'm'.repeat(1024 * 1024) }), 413, 'PAYLOAD_TOO_LARGE', /larger/);
  raw('text/plain', JSON.stringify(valid), 415, 'UNSUPPORTED_MEDIA_TYPE', /application\/json/, { 'content-type': 'text/plain' });
  raw('form encoded', 'from=a&to=b', 415, 'UNSUPPORTED_MEDIA_TYPE', /application\/json/, { 'content-type': 'application/x-www-form-urlencoded' });
  list.push({ label: 'POST /v1/transfers without Idempotency-Key', method: 'POST', path: '/v1/transfers', body: valid, status: 400, code: 'INVALID_INPUT', names: /Idempotency-Key/ });
  for (const b of headerSafe(BAD_TRANSFER_IDS)) {
    list.push({ label: `POST /v1/transfers Idempotency-Key ${b.label}`, method: 'POST', path: '/v1/transfers', body: valid, headers: { 'idempotency-key': b.value }, status: 400, code: 'INVALID_INPUT', names: /Idempotency-Key/ });
  }
  for (const w of ['5', '61s', '1m', '-1s', '5 s', '100000ms']) {
    const key = `${tag}-k${n++}`;
    transferKeys.push(key);
    list.push({ label: `POST /v1/transfers ?wait=${w}`, method: 'POST', path: `/v1/transfers?wait=${encodeURIComponent(w)}`, body: valid, headers: { 'idempotency-key': key }, status: 400, code: 'INVALID_INPUT', names: /wait/ });
  }
  const get = (label: string, path: string, code: string, names: RegExp) => list.push({ label, method: 'GET', path, status: 400, code, names });
  get('list ?status=PAID', '/v1/transfers?status=PAID', 'INVALID_INPUT', /status/);
  get('list ?status twice', '/v1/transfers?status=COMPLETED&status=FAILED', 'INVALID_INPUT', /status/);
  get('list ?from bad', `/v1/transfers?from=${encodeURIComponent("x'; DROP")}`, 'INVALID_ACCOUNT_ID', /from/);
  get('list ?currency=usd', '/v1/transfers?currency=usd', 'UNKNOWN_CURRENCY', /currency/);
  get('list ?account (not a filter)', `/v1/transfers?account=${f.usd}`, 'INVALID_INPUT', /"account"/);
  for (const l of ['0', '-1', 'many', '1e3', '1001', '']) get(`list ?limit=${l}`, `/v1/transfers?limit=${l}`, 'INVALID_INPUT', /limit/);
  for (const b of headerSafe(BAD_TRANSFER_IDS).filter((b) => b.value !== '')) {
    get(`GET a transfer id ${b.label}`, `/v1/transfers/${encodeURIComponent(b.value)}`, 'INVALID_INPUT', /transfer id/);
    list.push({ label: `cancel a transfer id ${b.label}`, method: 'POST', path: `/v1/transfers/${encodeURIComponent(b.value)}/cancel`, body: {}, status: 400, code: 'INVALID_INPUT', names: /transfer id/ });
  }
  for (const b of [...BAD_TEXT, { label: '501 characters', value: OVERSIZED.reason }, ...WRONG_TYPES.filter((w) => w.value !== undefined), { label: 'empty', value: '' }]) {
    list.push({ label: `cancel reason ${b.label}`, method: 'POST', path: `/v1/transfers/${tag}-nothing/cancel`, body: { reason: b.value }, status: 400, code: 'INVALID_INPUT', names: /reason/ });
  }
  list.push({ label: 'cancel with an unknown field', method: 'POST', path: `/v1/transfers/${tag}-nothing/cancel`, body: { reason: 'x', force: true }, status: 400, code: 'INVALID_INPUT', names: /"force"/ });
  for (const b of [...BAD_TEXT.filter((t) => /[\u0000-\u001f\u007f]/.test(t.value)), { label: '101 characters', value: OVERSIZED.by }, { label: 'a number', value: 5 }]) {
    list.push({ label: `approve by ${b.label}`, method: 'POST', path: `/v1/transfers/${tag}-nothing/approve`, body: { by: b.value }, status: 400, code: 'INVALID_INPUT', names: /\bby\b/ });
  }
  // Accounts.
  const open = (label: string, body: unknown, status: number, code: string, names: RegExp) => list.push({ label: `open ${label}`, method: 'POST', path: '/v1/accounts', body, status, code, names });
  for (const b of [...BAD_ACCOUNT_IDS, ...WRONG_TYPES]) open(`id ${b.label}`, b.value === undefined ? { currency: 'USD' } : { id: b.value, currency: 'USD' }, 400, 'INVALID_ACCOUNT_ID', /\bid\b|account/);
  for (const b of [...BAD_CURRENCIES, ...WRONG_TYPES]) open(`currency ${b.label}`, b.value === undefined ? { id: `${tag}-c` } : { id: `${tag}-c`, currency: b.value }, 400, 'UNKNOWN_CURRENCY', /currency/);
  for (const b of BAD_MINOR_UNITS.filter((m) => !/^zero|missing/.test(m.label))) open(`overdraftLimit ${b.label}`, { id: `${tag}-o`, currency: 'USD', overdraftLimit: b.value }, 400, 'INVALID_AMOUNT', /overdraft/);
  open('with an unknown field', { id: `${tag}-u`, currency: 'USD', kind: 'system' }, 400, 'INVALID_INPUT', /"kind"/);
  open('an existing account in another currency', { id: f.usd, currency: 'EUR' }, 409, 'ACCOUNT_EXISTS', new RegExp(f.usd));
  for (const b of headerSafe(BAD_ACCOUNT_IDS as BadValue<string>[]).filter((b) => b.value !== '')) get(`GET account ${b.label}`, `/v1/accounts/${encodeURIComponent(b.value)}`, 'INVALID_ACCOUNT_ID', /account/);
  let m = 0;
  const move = (label: string, kind: 'deposits' | 'withdrawals', account: string, body: unknown, status: number, code: string, names: RegExp, refused = false, key = `${tag}-m${m++}`) => {
    list.push({ label: `${kind} ${label}`, method: 'POST', path: `/v1/accounts/${encodeURIComponent(account)}/${kind}`, body, headers: { 'idempotency-key': key }, status, code, names, ...(refused ? { refusedKeys: [key] } : {}) });
  };
  for (const b of BAD_MINOR_UNITS) move(`amount ${b.label}`, 'deposits', f.usd, b.value === undefined ? { currency: 'USD' } : { amount: b.value, currency: 'USD' }, 400, 'INVALID_AMOUNT', /amount/);
  for (const b of [...BAD_CURRENCIES, ...WRONG_TYPES]) move(`currency ${b.label}`, 'withdrawals', f.usd, b.value === undefined ? { amount: '1' } : { amount: '1', currency: b.value }, 400, 'UNKNOWN_CURRENCY', /currency/);
  move('an unknown field', 'deposits', f.usd, { amount: '1', currency: 'USD', memo: 'x' }, 400, 'INVALID_INPUT', /"memo"/);
  move('decimal amount', 'deposits', f.usd, { amount: '1.00', currency: 'USD' }, 400, 'INVALID_AMOUNT', /amount/);
  for (const b of [...headerSafe(BAD_TEXT), { label: 'empty', value: '' }, { label: '201 characters', value: OVERSIZED.key }, { label: 'space', value: 'a key' }, { label: 'slash', value: 'a/b' }]) {
    move(`Idempotency-Key ${b.label}`, 'deposits', f.usd, { amount: '1', currency: 'USD' }, 400, 'INVALID_INPUT', /Idempotency-Key/, false, b.value);
  }
  list.push({ label: 'deposits without Idempotency-Key', method: 'POST', path: `/v1/accounts/${f.usd}/deposits`, body: { amount: '1', currency: 'USD' }, status: 400, code: 'INVALID_INPUT', names: /Idempotency-Key/ });
  move('into an unknown account', 'deposits', `${tag}-nobody`, { amount: '1', currency: 'USD' }, 404, 'ACCOUNT_NOT_FOUND', new RegExp(`${tag}-nobody`), true);
  move('into a frozen account', 'deposits', f.frozen, { amount: '1', currency: 'USD' }, 422, 'ACCOUNT_FROZEN', new RegExp(f.frozen), true);
  move('EUR into a USD account', 'deposits', f.usd, { amount: '1', currency: 'EUR' }, 422, 'CURRENCY_MISMATCH', /holds USD, not EUR/, true);
  move('more than the balance', 'withdrawals', f.usd, { amount: '100001', currency: 'USD' }, 422, 'INSUFFICIENT_FUNDS', new RegExp(f.usd), true);
  move('from an empty EUR account', 'withdrawals', f.eur, { amount: '1', currency: 'EUR' }, 422, 'INSUFFICIENT_FUNDS', new RegExp(f.eur), true);
  // Routes and methods that do not exist.
  list.push({ label: 'an unknown route', method: 'GET', path: '/v1/nothing', status: 404, code: 'NOT_FOUND', names: /no route/ });
  list.push({ label: 'an unversioned route', method: 'POST', path: '/transfers', body: valid, status: 404, code: 'NOT_FOUND', names: /no route/ });
  return { list, transferKeys };
}

describe('bad input through the HTTP API is a problem naming the field, and changes nothing', () => {
  it('every case of the catalogue', { timeout: 300_000 }, async () => {
    const { list, transferKeys } = cases();
    const failures: string[] = [];
    const refusedKeys = list.flatMap((c) => c.refusedKeys ?? []);
    const before = await snapshotLedger(h.t.urls);
    for (const c of list) {
      const a: Answer = await http(h, c.method, c.path, { ...(c.body !== undefined ? { body: c.body } : {}), ...(c.raw !== undefined ? { raw: c.raw } : {}), ...(c.headers ? { headers: c.headers } : {}) });
      const problems: string[] = [];
      if (a.status !== c.status) problems.push(`status ${a.status}, want ${c.status}`);
      if (a.contentType.split(';')[0] !== 'application/problem+json') problems.push(`content type ${a.contentType}`);
      if (a.body?.code !== c.code) problems.push(`code ${a.body?.code}, want ${c.code}`);
      if (a.body?.type !== `urn:durable-transfer:problem:${c.code}`) problems.push(`type ${a.body?.type}`);
      if (!c.names.test(a.body?.detail ?? '')) problems.push(`detail ${JSON.stringify(a.body?.detail)} does not name ${c.names}`);
      try {
        expectSchema('Problem', a.body);
      } catch (error) {
        problems.push((error as Error).message.slice(0, 200));
      }
      if (problems.length) failures.push(`${c.label}: ${problems.join('; ')}`);
    }
    const changes = ledgerChanges(before, await snapshotLedger(h.t.urls));
    const recorded = new Set(changes.flatMap((c) => (c.table === 'idempotency_keys' ? c.added.map((r) => (JSON.parse(r) as { key: string }).key) : [])));
    const changed = [...unexpectedChanges(changes, new Set(refusedKeys)), ...refusedKeys.filter((k) => !recorded.has(k)).map((k) => `refusal not recorded under ${k}`)];
    const started: string[] = [];
    for (const key of transferKeys) {
      if (await h.env.client.workflow.getHandle(key).describe().then(() => true, () => false)) started.push(key);
    }
    console.log(`HTTP API bad inputs tried: ${list.length}`);
    expect({ failures, changed, started }).toEqual({ failures: [], changed: [], started: [] });
  });
});
