import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { apiKeysFromEnv, assertBindable, bearerChecker, isLoopback } from '../../src/api/auth.js';
import { ledgerChanges, snapshotLedger } from '../support/ledger-snapshot.js';
import { API_KEY, OTHER_KEY, checkedInOpenApi, expectProblem, http, useApiServer } from './support.js';

const h = useApiServer();
const tag = `apiauth-${randomBytes(3).toString('hex')}`;

describe('HTTP API: authentication', () => {
  it('no key, a wrong key, another scheme: 401 problem with WWW-Authenticate, and nothing done', async () => {
    const before = await snapshotLedger(h.t.urls);
    const attempts: (string | null)[] = [null, 'Bearer nope', `Bearer ${API_KEY}x`, `Bearer ${API_KEY.slice(0, -1)}`, `Basic ${Buffer.from(`u:${API_KEY}`).toString('base64')}`, 'Bearer', `bearer${API_KEY}`, `Bearer  ${API_KEY}`];
    for (const authorization of attempts) {
      for (const [method, path, body] of [
        ['POST', '/v1/accounts', { id: `${tag}-a`, currency: 'USD' }],
        ['GET', '/v1/transfers', undefined],
        ['POST', '/v1/transfers', { from: `${tag}-a`, to: `${tag}-b`, amount: '1', currency: 'USD' }],
        ['GET', '/v1/nothing', undefined],
      ] as const) {
        const a = await fetch(`${h.baseUrl}${path}`, {
          method,
          headers: { ...(authorization === null ? {} : { authorization }), 'content-type': 'application/json', 'idempotency-key': `${tag}-t` },
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        const answer = { status: a.status, headers: a.headers, contentType: a.headers.get('content-type') ?? '', body: (await a.json()) as unknown };
        expectProblem(answer, 401, 'UNAUTHORIZED');
        expect(a.headers.get('www-authenticate')).toBe('Bearer realm="transfer-api"');
      }
    }
    expect(ledgerChanges(before, await snapshotLedger(h.t.urls))).toEqual([]);
    expect(await h.env.client.workflow.getHandle(`${tag}-t`).describe().then(() => 'started', () => 'none')).toBe('none');
  });

  it('either configured key works; /openapi.json needs none and equals docs/openapi.json', async () => {
    for (const key of [API_KEY, OTHER_KEY]) expect((await http(h, 'GET', '/v1/transfers?limit=1', { auth: key })).status).toBe(200);
    const doc = await http(h, 'GET', '/openapi.json', { auth: null });
    expect(doc.status).toBe(200);
    expect(doc.contentType).toMatch(/^application\/json/);
    expect(doc.body).toEqual(await checkedInOpenApi()); // stale? `npm run openapi`
    expect(doc.body.openapi).toBe('3.1.0');
  });

  it('every configured key is compared on every call (timingSafeEqual on SHA-256 digests, no early exit)', () => {
    const keys = ['k'.repeat(16), 'l'.repeat(40), 'm'.repeat(64)];
    const calls: { a: number; b: number }[] = [];
    const check = bearerChecker(keys, (a, b) => {
      calls.push({ a: a.length, b: b.length });
      return a.equals(b);
    });
    for (const [header, ok] of [[`Bearer ${keys[0]}`, true], [`Bearer ${keys[2]}`, true], ['Bearer wrong', false], [undefined, false], ['', false], [`Basic ${keys[1]}`, false], [`Bearer ${'x'.repeat(5000)}`, false]] as const) {
      calls.length = 0;
      expect(check(header), String(header).slice(0, 40)).toBe(ok);
      expect(calls).toEqual(keys.map(() => ({ a: 32, b: 32 }))); // all keys, equal-length digests, whatever was presented
    }
    expect(bearerChecker(keys)(`Bearer ${keys[1]}`)).toBe(true); // the real crypto.timingSafeEqual
    expect(bearerChecker(keys)(`Bearer ${keys[1]} `)).toBe(false);
  });

  it('keys come from TRANSFER_API_KEYS; short or spaced keys are refused; without keys only loopback may be bound', () => {
    expect(apiKeysFromEnv({ TRANSFER_API_KEYS: ` ${API_KEY} , ${OTHER_KEY},` })).toEqual([API_KEY, OTHER_KEY]);
    expect(apiKeysFromEnv({})).toEqual([]);
    expect(() => apiKeysFromEnv({ TRANSFER_API_KEYS: 'short' })).toThrow(/at least 16/);
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) expect(isLoopback(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '::ffff:10.0.0.1']) {
      expect(isLoopback(host), host).toBe(false);
      expect(() => assertBindable(host, [])).toThrow(/without API keys/);
      expect(() => assertBindable(host, [API_KEY])).not.toThrow();
    }
    expect(() => assertBindable('127.0.0.1', [])).not.toThrow();
  });
});
