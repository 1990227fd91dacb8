/**
 * The HTTP API's shapes as TypeScript types, for the typed client (src/api/client.ts) and the server.
 * They mirror the JSON schemas in schemas.ts, which are what the server enforces; the API tests check
 * every response against those schemas. Amounts are digit strings of minor units, never numbers.
 */
export type TransferStatus = 'RUNNING' | 'AWAITING_APPROVAL' | 'COMPENSATING' | 'NEEDS_ATTENTION' | 'COMPLETED' | 'FAILED' | 'COMPENSATED' | 'CANCELLED' | 'RESOLVED';

export interface TransferCreate {
  from: string;
  to: string;
  /** Minor units as a digit string: "1234" is 12.34 USD. */
  amount: string;
  currency: string;
  memo?: string;
  requestedBy?: string;
}

export interface Transfer {
  id: string;
  status: TransferStatus;
  from: string;
  to: string;
  amount: string;
  currency: string;
  memo?: string;
  reason?: string;
  message?: string;
  step?: string;
  runStatus?: string;
  sides?: { debit: string; credit: string };
  startedAt?: string;
  closedAt?: string;
}

/** GET /v1/transfers/{id}?detail=full (what `transfer status` reads; the inner shapes are the workflow's). */
export interface TransferDetail extends Transfer {
  result?: Record<string, unknown>;
  state?: Record<string, unknown>;
  ledger?: Record<string, unknown>;
}

export interface TransferList {
  items: Transfer[];
  nextCursor?: string;
}

export interface TransferFilter {
  status?: TransferStatus;
  from?: string;
  to?: string;
  currency?: string;
  limit?: number;
  cursor?: string;
}

export interface Approval {
  id: string;
  approved: boolean;
  by?: string;
}

export interface AccountOpen {
  id: string;
  currency: string;
  overdraftLimit?: string;
}

export interface Account {
  id: string;
  currency: string;
  status: 'active' | 'frozen' | 'closed';
  shard: number;
  posted: string;
  pendingDebits: string;
  pendingCredits: string;
  overdraftLimit: string;
  available: string;
}

export interface MovementRequest {
  amount: string;
  currency: string;
}

export interface Movement {
  key: string;
  kind: 'deposit' | 'withdrawal';
  account: string;
  amount: string;
  currency: string;
  entryId: string;
  createdAt: string;
}

/** RFC 9457 problem details as this API sends them (`application/problem+json`). */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
  instance?: string;
  fields?: string[];
  errors?: { field: string; message: string }[];
}

/** `type` of every problem: a stable URN ending in the code the CLI prints. */
export const PROBLEM_TYPE_PREFIX = 'urn:durable-transfer:problem:';
