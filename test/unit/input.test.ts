import { describe, expect, it } from 'vitest';
import { assertIdempotencyKey, assertKnownFields, shown, textProblem } from '../../src/domain/input.js';
import { validateCancelRequest } from '../../src/domain/transfer.js';
import { refusalCode } from '../support/refusals.js';

describe('text from outside', () => {
  it('accepts printable text in any script, pairs of surrogates included', () => {
    for (const ok of ['rent', 'Miete für März', '家賃', 'emoji 💸', "O'Brien; DROP TABLE", '$(id)']) expect(textProblem(ok), ok).toBeUndefined();
  });

  it('names what is wrong: NUL, controls, lone surrogates, undecodable bytes', () => {
    expect(textProblem('a\u0000b')).toMatch(/NUL/);
    expect(textProblem('a\tb')).toMatch(/control character U\+0009/);
    expect(textProblem('a\u0085b')).toMatch(/U\+0085/);
    expect(textProblem('a\uD800')).toMatch(/lone UTF-16 surrogate/);
    expect(textProblem('\uDC00a')).toMatch(/lone UTF-16 surrogate/);
    expect(textProblem('caf\uFFFD')).toMatch(/U\+FFFD/);
  });

  it('idempotency keys: 1 to 200 printable characters, the field named', () => {
    expect(() => assertIdempotencyKey('k'.repeat(200))).not.toThrow();
    expect(() => assertIdempotencyKey('k'.repeat(201), '--key')).toThrow(/--key must be 1 to 200 characters \(got 201\)/);
    expect(() => assertIdempotencyKey(5)).toThrow(/idempotency key must be a string \(got number 5\)/);
    expect(refusalCode(() => assertIdempotencyKey('a\u0000'))).toBe('INVALID_INPUT');
  });

  it('closed objects: unknown fields are named', () => {
    expect(() => assertKnownFields({ a: 1, b: 2, c: 3 }, ['a'], 'thing')).toThrow('thing has unknown fields "b", "c" (allowed: a)');
    expect(() => validateCancelRequest({ reason: 'x', force: true })).toThrow(/cancel request has unknown field "force"/);
    expect(() => validateCancelRequest(undefined)).not.toThrow();
    expect(() => validateCancelRequest({})).not.toThrow();
  });

  it('quotes input cut short', () => {
    expect(shown('x'.repeat(1_000_000)).length).toBeLessThan(70);
    expect(shown(10n ** 30n)).toBe('1000000000000000000000000000000');
    expect(shown(undefined)).toBe('nothing');
  });
});
