import { CURRENCY_EXPONENTS, MAX_AMOUNT } from '../domain/money.js';
import { MAX_MEMO_LENGTH, MAX_REASON_LENGTH, OPEN_STATUSES, TERMINAL_STATUSES } from '../domain/transfer.js';

/**
 * The JSON schemas of the HTTP API: the server validates requests and responses with exactly these
 * objects, and the OpenAPI document (`/openapi.json`, docs/openapi.json) is generated from them.
 * Objects are closed (`additionalProperties: false`): an unknown field is refused, never ignored.
 * Schemas here check shape; the domain checks (src/domain) run after them and give the same codes and
 * messages as the CLI.
 */
export type JsonSchema = Record<string, unknown>;

const CURRENCIES = Object.keys(CURRENCY_EXPONENTS).sort();

export const MinorUnits: JsonSchema = {
  type: 'string',
  pattern: '^[1-9][0-9]{0,18}$',
  description: `Amount as a digit string of minor units (\"1234\" is 12.34 USD), 1 to ${MAX_AMOUNT}. Never a JSON number.`,
  examples: ['1234'],
};
/** Balances and amounts read back from the ledger: digit strings, possibly zero or negative. */
export const Balance: JsonSchema = { type: 'string', pattern: '^-?[0-9]+$', description: 'Minor units as a digit string.' };
export const Currency: JsonSchema = { type: 'string', enum: CURRENCIES, description: 'ISO 4217 currency code accepted by the ledger.' };
export const AccountId: JsonSchema = {
  type: 'string',
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$',
  description: 'Customer account id: letters, digits, "_", ".", "-"; at most 64 characters.',
};
export const TransferId: JsonSchema = {
  type: 'string',
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$',
  description: 'Transfer id (= the Temporal workflow id): letters, digits, "_.:-"; at most 128 characters.',
};
/** Deposit and withdrawal keys: what the ledger stores under its movement namespace. */
export const MovementKey: JsonSchema = {
  type: 'string',
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$',
  description: 'Idempotency key of the deposit or withdrawal: letters, digits, "_.:-"; at most 200 characters.',
};
const TRANSFER_STATUSES = [...OPEN_STATUSES, ...TERMINAL_STATUSES];
export const TransferStatus: JsonSchema = { type: 'string', enum: TRANSFER_STATUSES };
const Timestamp: JsonSchema = { type: 'string', description: 'ISO 8601 date-time (UTC).' };

export const TransferCreate: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to', 'amount', 'currency'],
  properties: {
    from: { ...AccountId, description: 'Account to debit.' },
    to: { ...AccountId, description: 'Account to credit.' },
    amount: MinorUnits,
    currency: Currency,
    memo: { type: 'string', maxLength: MAX_MEMO_LENGTH, description: 'Free text stored with the transfer (one printable line).' },
    requestedBy: { type: 'string', minLength: 1, maxLength: 100, description: 'Who asks for it; that person can never approve it.' },
  },
};

export const Transfer: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'status', 'from', 'to', 'amount', 'currency'],
  properties: {
    id: { type: 'string' },
    status: TransferStatus,
    from: { type: 'string' },
    to: { type: 'string' },
    amount: { type: 'string', description: 'Digit string of minor units.' },
    currency: { type: 'string' },
    memo: { type: 'string' },
    reason: { type: 'string', description: 'Refusal or outcome code (src/domain/codes.ts), e.g. INSUFFICIENT_FUNDS.' },
    message: { type: 'string' },
    step: { type: 'string', description: 'Current step while the transfer runs.' },
    runStatus: { type: 'string', description: 'The workflow run status: RUNNING, COMPLETED, TERMINATED, …' },
    sides: {
      type: 'object',
      additionalProperties: false,
      required: ['debit', 'credit'],
      properties: { debit: { type: 'string' }, credit: { type: 'string' } },
      description: 'How each side ended: posted, voided, expired, refunded, none.',
    },
    startedAt: Timestamp,
    closedAt: Timestamp,
  },
};

/**
 * GET /v1/transfers/{id}?detail=full: the Transfer plus what `transfer status` reads, as it reads it
 * (the CLI's status asks the stack's API this way). Their inner shape is the workflow's own
 * (src/domain/transfer.ts, src/repair.ts) and may gain members: described, not closed.
 */
export const TransferDetail: JsonSchema = {
  ...Transfer,
  properties: {
    ...(Transfer['properties'] as Record<string, JsonSchema>),
    result: { type: 'object', description: 'Once the run ended with an outcome: the workflow\'s TransferResult (holds, steps, sides, resolution, …).' },
    state: { type: 'object', description: 'While the run is open and a worker answers: the workflow\'s status query (step, holds, attempts, attention, …).' },
    ledger: { type: 'object', description: 'For a run closed without an outcome (terminated, timed out): what the ledger holds for the transfer.' },
  },
};

export const TransferList: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['items'],
  properties: {
    items: { type: 'array', items: Transfer },
    nextCursor: { type: 'string', description: 'Opaque; pass as `cursor` with the same filters for the next page. Absent on the last page.' },
  },
};

export const CancelRequest: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', minLength: 1, maxLength: MAX_REASON_LENGTH } },
};

export const ApproveRequest: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { by: { type: 'string', minLength: 1, maxLength: 100, description: 'Who approves (never the requester).' } },
};

export const Approval: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'approved'],
  properties: { id: { type: 'string' }, approved: { type: 'boolean' }, by: { type: 'string' } },
};

export const AccountOpen: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'currency'],
  properties: {
    id: AccountId,
    currency: Currency,
    overdraftLimit: { type: 'string', pattern: '^[0-9]{1,19}$', description: 'Overdraft limit in minor units (digit string); default "0".' },
  },
};

export const Account: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'currency', 'status', 'shard', 'posted', 'pendingDebits', 'pendingCredits', 'overdraftLimit', 'available'],
  properties: {
    id: { type: 'string' },
    currency: { type: 'string' },
    status: { type: 'string', enum: ['active', 'frozen', 'closed'] },
    shard: { type: 'integer' },
    posted: Balance,
    pendingDebits: Balance,
    pendingCredits: Balance,
    overdraftLimit: Balance,
    available: { ...Balance, description: 'posted − pending debits + overdraft limit' },
  },
};

export const MovementRequest: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['amount', 'currency'],
  properties: { amount: MinorUnits, currency: { ...Currency, description: "Must be the account's currency." } },
};

export const Movement: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['key', 'kind', 'account', 'amount', 'currency', 'entryId', 'createdAt'],
  properties: {
    key: { type: 'string' },
    kind: { type: 'string', enum: ['deposit', 'withdrawal'] },
    account: { type: 'string' },
    amount: { type: 'string' },
    currency: { type: 'string' },
    entryId: { type: 'string', description: 'Journal entry id (the idempotency key).' },
    createdAt: Timestamp,
  },
};

/** RFC 9457 problem details, with our stable `code` and the fields at fault. */
export const Problem: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'title', 'status', 'code'],
  properties: {
    type: { type: 'string', description: 'Stable URI of the problem type: urn:durable-transfer:problem:<code>.' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    code: { type: 'string', description: 'The same code the CLI prints in `{"error": {"code"}}`.' },
    fields: { type: 'array', items: { type: 'string' }, description: 'Request fields at fault (for TRANSFER_ID_REUSED: the parameters that differ).' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['field', 'message'],
        properties: { field: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
};

/** Query and header parameters. */
export const Wait: JsonSchema = {
  type: 'string',
  pattern: '^(?:[0-9]{1,5}ms|[0-9]{1,2}s)$',
  description: 'Wait up to this long for the outcome (e.g. "5s", "500ms"; at most 60s).',
};
export const Limit: JsonSchema = { type: 'string', pattern: '^(?:[1-9][0-9]{0,2}|1000)$', description: 'Page size, 1 to 1000 (default 50).' };
export const Cursor: JsonSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,4096}$', description: 'nextCursor of the previous page.' };

/** Named schemas: components in the OpenAPI document. */
export const COMPONENTS: Record<string, JsonSchema> = {
  TransferCreate, Transfer, TransferDetail, TransferList, CancelRequest, ApproveRequest, Approval, AccountOpen, Account, MovementRequest, Movement, Problem,
};
