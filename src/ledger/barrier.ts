import { createHash } from 'node:crypto';
import { Refusal, isRefusalCode } from '../domain/codes.js';
import { RefusalError } from '../domain/errors.js';
import type { MovedAnswer, ShardContext } from './shard-context.js';
import { callStep, type StepArg } from './step-batcher.js';
import { MovedError } from './topology.js';

/**
 * The idempotency barrier lives in the database (migrations/004_step_functions.sql): each step is
 * one call of a PL/pgSQL function that claims its key by a unique-key insert, applies the effect,
 * records the outcome under the key and returns it, all in the one statement's transaction. A
 * concurrent duplicate blocks on the unique index until the first call ends, then replays its
 * committed record. What stays here: the fingerprint of a call's parameters, and the call itself.
 */

/** Canonical JSON (sorted keys) so the same parameters always give the same fingerprint. */
export function fingerprint(operation: string, params: Record<string, unknown>): string {
  const canonical = JSON.stringify(params, Object.keys(params).sort());
  return createHash('sha256').update(`${operation}\n${canonical}`).digest('hex');
}

interface StoredRefusal {
  code?: unknown;
  message?: unknown;
  details?: Record<string, string>;
}

/** What a step function returns: the outcome (now or replayed), or a business refusal. */
type StepAnswer<T> = ({ replayed: boolean; outcome: T; refusal?: undefined } | { replayed: boolean; refusal: StoredRefusal }) & { moved?: MovedAnswer };

/**
 * Runs one step: `fn(args…)` as a single statement (its own transaction), on one pooled connection;
 * or, when the shard's step calls are all busy, in the next batch of the shard's batcher (one
 * transaction for several steps, src/ledger/step-batcher.ts), with the same answer. A refusal (now,
 * or the sticky one stored under the key) is thrown as the RefusalError it was; faults are
 * classified by `withClient` (transient or not).
 */
export async function runStep<T>(ctx: ShardContext, fn: string, args: readonly StepArg[]): Promise<{ outcome: T; replayed: boolean }> {
  const answer = await (ctx.steps ? ctx.steps.run<StepAnswer<T>>(fn, args) : callStep<StepAnswer<T>>(ctx.pool, fn, args));
  // Not served here (the slot moved, or is moving and this account already went): nothing was done.
  if (answer.moved) throw new MovedError(answer.moved.slot, answer.moved.shard, answer.moved.account, ctx.shard);
  if (answer.refusal) throw refusalError(answer.refusal);
  return { outcome: answer.outcome, replayed: answer.replayed };
}

function refusalError(stored: StoredRefusal): RefusalError {
  return new RefusalError(isRefusalCode(stored.code) ? stored.code : Refusal.INVALID_INPUT, String(stored.message ?? 'refused'), stored.details ?? {});
}
