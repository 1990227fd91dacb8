import { classify } from '../cli/output.js';
import { Refusal } from '../domain/codes.js';
import { RefusalError } from '../domain/errors.js';
import { shown } from '../domain/input.js';
import { TransferIdReusedError } from '../domain/transfer-reuse.js';
import { PROBLEM_TYPE_PREFIX, type Problem } from './types.js';

/**
 * Errors as RFC 9457 problem details. `type` is `urn:durable-transfer:problem:<CODE>` and `code` the
 * same code the CLI prints (`{"error": {"code"}}`): refusal codes from src/domain/codes.ts, and
 * INVALID_INPUT, TRANSFER_ID_REUSED, NOT_FOUND, UNAUTHORIZED, IDEMPOTENCY_KEY_IN_FLIGHT, … below.
 */
export const PROBLEM_CODES = {
  MALFORMED_JSON: 'MALFORMED_JSON',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  UNAUTHORIZED: 'UNAUTHORIZED',
  NOT_FOUND: 'NOT_FOUND',
  TRANSFER_ID_REUSED: 'TRANSFER_ID_REUSED',
  IDEMPOTENCY_KEY_IN_FLIGHT: 'IDEMPOTENCY_KEY_IN_FLIGHT',
  CANCEL_REJECTED: 'CANCEL_REJECTED',
  APPROVE_REJECTED: 'APPROVE_REJECTED',
  APPROVAL_REFUSED: 'APPROVAL_REFUSED',
  UNREACHABLE: 'UNREACHABLE',
  SHARD_IDENTITY: 'SHARD_IDENTITY',
  INTERNAL: 'INTERNAL',
} as const;

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 409: 'Conflict', 413: 'Content Too Large',
  415: 'Unsupported Media Type', 422: 'Unprocessable Content', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

/** An error a handler throws to answer with a problem. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
    readonly fields?: readonly string[],
    readonly errors?: readonly { field: string; message: string }[],
  ) {
    super(detail);
  }
}

export function problem(status: number, code: string, detail?: string, extra: { fields?: readonly string[]; errors?: readonly { field: string; message: string }[]; instance?: string } = {}): Problem {
  return {
    type: `${PROBLEM_TYPE_PREFIX}${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    code,
    ...(detail ? { detail } : {}),
    ...(extra.instance ? { instance: extra.instance } : {}),
    ...(extra.fields?.length ? { fields: [...extra.fields] } : {}),
    ...(extra.errors?.length ? { errors: [...extra.errors] } : {}),
  };
}

/** Refusals about the request itself (400) versus the ledger's state (404, 409, 422). */
const REFUSAL_STATUS: Partial<Record<string, number>> = {
  [Refusal.INVALID_INPUT]: 400,
  [Refusal.INVALID_AMOUNT]: 400,
  [Refusal.INVALID_ACCOUNT_ID]: 400,
  [Refusal.UNKNOWN_CURRENCY]: 400,
  [Refusal.SAME_ACCOUNT]: 400,
  [Refusal.ACCOUNT_NOT_FOUND]: 404,
  [Refusal.ACCOUNT_EXISTS]: 409,
};

/** The field a refusal code is about, for `fields` (the message names it as well). */
const REFUSAL_FIELD: Partial<Record<string, string>> = {
  [Refusal.INVALID_AMOUNT]: 'amount',
  [Refusal.UNKNOWN_CURRENCY]: 'currency',
};

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
  data?: unknown;
}

/** Field names as the caller wrote them (headers in their usual case). */
const FIELD_NAMES: Record<string, string> = { 'idempotency-key': 'Idempotency-Key', transferId: 'transfer id', accountId: 'account' };

function fieldOf(e: AjvError, context: string): string {
  const path = e.instancePath.split('/').filter(Boolean);
  if (e.keyword === 'required') path.push(String(e.params['missingProperty']));
  if (e.keyword === 'additionalProperties') path.push(String(e.params['additionalProperty']));
  const last = path.join('.');
  if (!last) return context === 'body' ? 'body' : context;
  return FIELD_NAMES[last] ?? last;
}

/** The same code the domain check (and so the CLI) would give for this field. */
function codeOf(field: string, keyword: string): string {
  if (keyword === 'additionalProperties') return Refusal.INVALID_INPUT;
  if (field === 'amount' || field === 'overdraftLimit') return Refusal.INVALID_AMOUNT;
  if (field === 'currency') return Refusal.UNKNOWN_CURRENCY;
  if (field === 'from' || field === 'to' || field === 'account' || field === 'id') return Refusal.INVALID_ACCOUNT_ID;
  return Refusal.INVALID_INPUT;
}

const HINTS: Record<string, string> = {
  amount: 'must be a digit string of minor units from 1 to 9223372036854775807 ("1234" is 12.34 USD)',
  overdraftLimit: 'must be a digit string of minor units',
  currency: 'must be an ISO 4217 code this ledger accepts, such as "USD"',
  from: 'is not a valid account id (letters, digits, "_", ".", "-"; at most 64)',
  to: 'is not a valid account id (letters, digits, "_", ".", "-"; at most 64)',
  account: 'is not a valid account id (letters, digits, "_", ".", "-"; at most 64)',
  id: 'is not a valid account id (letters, digits, "_", ".", "-"; at most 64)',
  'transfer id': 'is invalid (letters, digits, "_.:-", at most 128)',
  'Idempotency-Key': 'must be 1 to 200 characters of letters, digits and "_.:-", starting with a letter or digit (for transfers: at most 128, it is the transfer id)',
  wait: 'must be a duration such as "5s" or "500ms" (at most 60s)',
  limit: 'must be an integer from 1 to 1000',
  cursor: 'must be the nextCursor of a previous page',
};

function messageOf(e: AjvError, field: string): string {
  if (e.keyword === 'additionalProperties') return `unknown field ${JSON.stringify(String(e.params['additionalProperty']))}`;
  if (e.keyword === 'required') return `${field} is required`;
  if (e.keyword === 'type') return `${field} must be ${String(e.params['type'])} (got ${typeName(e.data)})`;
  const hint = HINTS[field];
  const got = e.data === undefined ? '' : ` (got ${shown(e.data)})`;
  return hint ? `${field} ${hint}${got}` : `${field} ${e.message ?? 'is invalid'}${got}`;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${shown(value)}`;
}

/** Fastify's validation error (Ajv errors of one request part) as one problem naming every field. */
export function validationProblem(errors: AjvError[], context: string): ApiProblem {
  // A failing branch of a schema can report the same spot more than once; one line per field and message.
  const seen = new Set<string>();
  // An unknown field comes first: a misspelt `curency` is the cause of the missing `currency`.
  const list = [...errors.filter((e) => e.keyword === 'additionalProperties'), ...errors.filter((e) => e.keyword !== 'additionalProperties')]
    .map((e) => {
      const field = fieldOf(e, context);
      return { field, message: messageOf(e, field), code: codeOf(field, e.keyword) };
    })
    .filter((e) => !seen.has(e.message) && seen.add(e.message));
  const first = list[0] ?? { field: context, message: `${context} is invalid`, code: Refusal.INVALID_INPUT };
  return new ApiProblem(400, first.code, list.map((e) => e.message).join('; '), [...new Set(list.map((e) => e.field))], list.map(({ field, message }) => ({ field, message })));
}

/** Any error a request can end in, as (status, problem). Unexpected errors are 500 and logged by the caller. */
export function toProblem(error: unknown, instance?: string): { problem: Problem; unexpected: boolean } {
  const at = instance ? { instance } : {};
  if (error instanceof ApiProblem) return { problem: problem(error.status, error.code, error.message, { ...at, ...(error.fields ? { fields: error.fields } : {}), ...(error.errors ? { errors: error.errors } : {}) }), unexpected: false };
  if (error instanceof TransferIdReusedError) return { problem: problem(422, error.code, error.message, { ...at, fields: error.fields }), unexpected: false };
  if (error instanceof RefusalError) {
    const field = REFUSAL_FIELD[error.code];
    return { problem: problem(REFUSAL_STATUS[error.code] ?? 422, error.code, error.message, { ...at, ...(field ? { fields: [field] } : {}) }), unexpected: false };
  }
  const e = error as { code?: string; statusCode?: number; validation?: AjvError[]; validationContext?: string; name?: string; message?: string };
  if (e?.validation) return toProblem(validationProblem(e.validation, e.validationContext ?? 'body'), instance);
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { problem: problem(413, PROBLEM_CODES.PAYLOAD_TOO_LARGE, 'the request body is larger than this API accepts', at), unexpected: false };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { problem: problem(415, PROBLEM_CODES.UNSUPPORTED_MEDIA_TYPE, 'request bodies must be application/json', at), unexpected: false };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { problem: problem(400, PROBLEM_CODES.MALFORMED_JSON, 'the body is empty but the content type says JSON', { ...at, fields: ['body'] }), unexpected: false };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { problem: problem(400, PROBLEM_CODES.MALFORMED_JSON, `the body is not valid JSON${e.message ? `: ${e.message}` : ''}`, { ...at, fields: ['body'] }), unexpected: false };
  }
  // secure-json-parse refuses prototype poisoning ("__proto__", "constructor.prototype") with a SyntaxError.
  if (e?.name === 'SyntaxError' && e.statusCode === 400) return { problem: problem(400, PROBLEM_CODES.MALFORMED_JSON, `the body is not acceptable JSON: ${e.message}`, { ...at, fields: ['body'] }), unexpected: false };
  if (e?.name === 'WorkflowNotFoundError') return { problem: problem(404, PROBLEM_CODES.NOT_FOUND, 'transfer not found', at), unexpected: false };
  const classified = classify(error);
  if (classified.code === 'UNREACHABLE' || classified.code === 'SHARD_IDENTITY') return { problem: problem(503, classified.code, classified.message, at), unexpected: false };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { problem: problem(e.statusCode, Refusal.INVALID_INPUT, e.message ?? 'bad request', at), unexpected: false };
  }
  return { problem: problem(500, PROBLEM_CODES.INTERNAL, 'internal error; the server log has the details', at), unexpected: true };
}
