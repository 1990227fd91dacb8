/**
 * A typed client of the HTTP API (`transfer serve`, and `transfer up`), on `fetch` alone: no
 * dependency of this package is loaded. Errors are `ApiError`s carrying the RFC 9457 problem the
 * server sent (`code` is the same code the CLI prints).
 *
 *   import { createTransferApi } from 'durable-transfer/api/client';
 *   const api = createTransferApi({ baseUrl: 'http://127.0.0.1:8787', apiKey: process.env.TRANSFER_API_KEY });
 *   const t = await api.startTransfer({ from: 'alice', to: 'bob', amount: '1234', currency: 'USD' }, { idempotencyKey: 'order-42', wait: '5s' });
 */
import type { Account, AccountOpen, Approval, Movement, MovementRequest, Problem, Transfer, TransferCreate, TransferFilter, TransferList } from './types.js';

export type { Account, AccountOpen, Approval, Movement, MovementRequest, Problem, Transfer, TransferCreate, TransferFilter, TransferList, TransferStatus } from './types.js';

export interface TransferApiOptions {
  /** e.g. http://127.0.0.1:8787 */
  baseUrl: string;
  /** Bearer key (TRANSFER_API_KEYS on the server); omit for a server without keys. */
  apiKey?: string;
  /** Default: globalThis.fetch. */
  fetch?: typeof fetch;
}

/** A problem-details answer (or an answer that was not one: then code is HTTP_<status>). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  readonly code: string;
  constructor(readonly problem: Problem) {
    super(`${problem.code}: ${problem.detail ?? problem.title}`);
    this.status = problem.status;
    this.code = problem.code;
  }
  /** Request fields at fault (for TRANSFER_ID_REUSED and IDEMPOTENCY_KEY_REUSED: what differs). */
  get fields(): string[] {
    return this.problem.fields ?? [];
  }
}

/** What a create answered: the resource, and whether this was the same request again. */
export interface Created<T> {
  value: T;
  /** True when the key had been used before with the same request (Idempotent-Replayed: true). */
  replayed: boolean;
}

export interface TransferApi {
  startTransfer(request: TransferCreate, options: { idempotencyKey: string; wait?: string }): Promise<Created<Transfer>>;
  getTransfer(id: string): Promise<Transfer>;
  listTransfers(filter?: TransferFilter): Promise<TransferList>;
  cancelTransfer(id: string, reason?: string): Promise<Transfer>;
  approveTransfer(id: string, by?: string): Promise<Approval>;
  openAccount(request: AccountOpen): Promise<Created<Account>>;
  getAccount(id: string): Promise<Account>;
  deposit(accountId: string, request: MovementRequest, options: { idempotencyKey: string }): Promise<Created<Movement>>;
  withdraw(accountId: string, request: MovementRequest, options: { idempotencyKey: string }): Promise<Created<Movement>>;
}

export function createTransferApi(options: TransferApiOptions): TransferApi {
  const base = options.baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch;

  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ value: T; response: Response }> {
    const response = await doFetch(`${base}${path}`, {
      method,
      headers: {
        accept: 'application/json, application/problem+json',
        ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const p = parsed as Partial<Problem> | undefined;
      throw new ApiError(p && typeof p.code === 'string' && typeof p.type === 'string'
        ? (p as Problem)
        : { type: 'about:blank', title: response.statusText || 'Error', status: response.status, code: `HTTP_${response.status}`, detail: text.slice(0, 500) });
    }
    return { value: parsed as T, response };
  }
  const created = <T>(r: { value: T; response: Response }): Created<T> => ({ value: r.value, replayed: r.response.headers.get('idempotent-replayed') === 'true' });
  const seg = encodeURIComponent;

  return {
    async startTransfer(request, o) {
      return created(await call<Transfer>('POST', `/v1/transfers${o.wait ? `?wait=${seg(o.wait)}` : ''}`, request, { 'idempotency-key': o.idempotencyKey }));
    },
    async getTransfer(id) {
      return (await call<Transfer>('GET', `/v1/transfers/${seg(id)}`)).value;
    },
    async listTransfers(filter = {}) {
      const query = new URLSearchParams(Object.entries(filter).filter(([, v]) => v !== undefined).map(([k, v]): [string, string] => [k, String(v)]));
      const qs = query.toString();
      return (await call<TransferList>('GET', `/v1/transfers${qs ? `?${qs}` : ''}`)).value;
    },
    async cancelTransfer(id, reason) {
      return (await call<Transfer>('POST', `/v1/transfers/${seg(id)}/cancel`, reason === undefined ? {} : { reason })).value;
    },
    async approveTransfer(id, by) {
      return (await call<Approval>('POST', `/v1/transfers/${seg(id)}/approve`, by === undefined ? {} : { by })).value;
    },
    async openAccount(request) {
      const r = await call<Account>('POST', '/v1/accounts', request);
      return { value: r.value, replayed: r.response.status === 200 };
    },
    async getAccount(id) {
      return (await call<Account>('GET', `/v1/accounts/${seg(id)}`)).value;
    },
    async deposit(accountId, request, o) {
      return created(await call<Movement>('POST', `/v1/accounts/${seg(accountId)}/deposits`, request, { 'idempotency-key': o.idempotencyKey }));
    },
    async withdraw(accountId, request, o) {
      return created(await call<Movement>('POST', `/v1/accounts/${seg(accountId)}/withdrawals`, request, { 'idempotency-key': o.idempotencyKey }));
    },
  };
}

/* The same operations as plain functions, for one-off calls: `startTransfer({ baseUrl, apiKey }, request, { idempotencyKey })`. */
export const startTransfer = (o: TransferApiOptions, ...a: Parameters<TransferApi['startTransfer']>) => createTransferApi(o).startTransfer(...a);
export const getTransfer = (o: TransferApiOptions, ...a: Parameters<TransferApi['getTransfer']>) => createTransferApi(o).getTransfer(...a);
export const listTransfers = (o: TransferApiOptions, ...a: Parameters<TransferApi['listTransfers']>) => createTransferApi(o).listTransfers(...a);
export const cancelTransfer = (o: TransferApiOptions, ...a: Parameters<TransferApi['cancelTransfer']>) => createTransferApi(o).cancelTransfer(...a);
export const approveTransfer = (o: TransferApiOptions, ...a: Parameters<TransferApi['approveTransfer']>) => createTransferApi(o).approveTransfer(...a);
export const openAccount = (o: TransferApiOptions, ...a: Parameters<TransferApi['openAccount']>) => createTransferApi(o).openAccount(...a);
export const getAccount = (o: TransferApiOptions, ...a: Parameters<TransferApi['getAccount']>) => createTransferApi(o).getAccount(...a);
export const deposit = (o: TransferApiOptions, ...a: Parameters<TransferApi['deposit']>) => createTransferApi(o).deposit(...a);
export const withdraw = (o: TransferApiOptions, ...a: Parameters<TransferApi['withdraw']>) => createTransferApi(o).withdraw(...a);
