import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Client } from '@temporalio/client';
import { executionInfoFromRaw } from '@temporalio/client/lib/helpers.js';
import { Ajv, type ErrorObject } from 'ajv';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { approveTransfer, cancelTransfer, describeTransfer, startTransfer, type TransferView } from '../client.js';
import { Refusal } from '../domain/codes.js';
import { RefusalError } from '../domain/errors.js';
import { AmountKey, CurrencyKey, FromAccountKey, ToAccountKey, TransferStatusKey } from '../domain/search-attributes.js';
import { PERSON, validateCancelRequest, validateTransfer, type TransferResult } from '../domain/transfer.js';
import type { Ledger } from '../ledger/ledger.js';
import type { AccountView } from '../ledger/types.js';
import { TRANSFER_WORKFLOW } from '../../workflows/definitions.js';
import { bearerChecker } from './auth.js';
import { buildOpenApi, type RouteDoc } from './openapi.js';
import { ApiProblem, PROBLEM_CODES, toProblem } from './problems.js';
import * as S from './schemas.js';
import type { Account, Movement, Transfer, TransferCreate, TransferDetail } from './types.js';

export const DEFAULT_BODY_LIMIT = 16 * 1024;
export const MAX_WAIT_MS = 60_000;
export const DEFAULT_CLAIM_LEASE_MS = 30_000;

export interface ApiServerOptions {
  client: Client;
  taskQueue: string;
  ledger: Ledger;
  /** Bearer keys; empty: no authentication (then only loopback may be bound: see assertBindable). */
  apiKeys?: readonly string[];
  bodyLimit?: number;
  /**
   * How long an Idempotency-Key claim lasts without renewal (renewed every third of it while the
   * request runs): the longest a key stays blocked after its process died. Default 30 s.
   */
  claimLeaseMs?: number;
  /** Where unexpected errors are reported (pino-like); default: nowhere. */
  log?: { error(fields: object, message: string): void };
}

type Req = FastifyRequest<{ Body: unknown; Querystring: Record<string, string | undefined>; Params: Record<string, string>; Headers: Record<string, string | undefined> }>;

interface Route extends RouteDoc {
  handler: (req: Req, reply: FastifyReply) => Promise<unknown>;
}

/** A closed schema for headers is impossible (clients send many): only the ones we read are described. */
const idempotencyHeader = (key: S.JsonSchema) => ({
  type: 'object',
  required: ['idempotency-key'],
  properties: { 'idempotency-key': key },
});

const TRANSFER_KEY = { ...S.TransferId, description: 'The transfer id: the same key and body start the transfer once (see docs/api.md).' };
const MOVEMENT_KEY = { ...S.MovementKey, description: 'The ledger idempotency key of this deposit or withdrawal (see docs/api.md).' };

/**
 * The HTTP API on Fastify: JSON-schema validation of every request part and every response (an
 * answer that does not match its schema is a 500, never a leak), problem details for every error,
 * bearer keys checked before the body is even read.
 */
export async function createApiServer(o: ApiServerOptions): Promise<FastifyInstance> {
  const { client, taskQueue, ledger } = o;
  const keys = o.apiKeys ?? [];
  const authorized = bearerChecker(keys);
  const leaseMs = o.claimLeaseMs ?? DEFAULT_CLAIM_LEASE_MS;
  const instance = `${hostname()}/${process.pid}/${randomUUID()}`;
  const readLedger = (id: string) => ledger.transferRecords(id);

  const requestAjv = new Ajv({ allErrors: true, verbose: true, coerceTypes: false, useDefaults: false, removeAdditional: false, strict: true });
  const responseAjv = new Ajv({ allErrors: true, coerceTypes: false, useDefaults: false, removeAdditional: false, strict: true });

  const app = Fastify({
    bodyLimit: o.bodyLimit ?? DEFAULT_BODY_LIMIT,
    logger: false,
    // secure-json-parse: "__proto__" and "constructor.prototype" in a body are refused, not stripped.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    // Path parameters are checked by their schemas (ids are at most 128 characters); past this the router refuses.
    routerOptions: { maxParamLength: 512 },
    // What the router refuses before any route runs (a path parameter past that length, a URL it cannot decode).
    frameworkErrors: (error, req, reply) => {
      const detail = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is longer than any id this API accepts' : `malformed URL (${error.code})`;
      const { problem: p } = toProblem(new ApiProblem(400, Refusal.INVALID_INPUT, detail), req.url.split('?')[0]);
      void (reply as FastifyReply).code(400).type('application/problem+json').send(JSON.stringify(p));
    },
    // Bytes Node cannot even parse as HTTP (a NUL in a header, say) answered as a problem too.
    clientErrorHandler: (error, socket) => {
      if (!socket.writable) return;
      const body = JSON.stringify(toProblem(new ApiProblem(400, Refusal.INVALID_INPUT, `malformed HTTP request: ${(error as { code?: string }).code ?? error.message}`)).problem);
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    },
  });
  app.removeContentTypeParser(['text/plain']);
  app.setValidatorCompiler(({ schema }) => requestAjv.compile(schema));
  app.setSerializerCompiler(({ schema, url, method }) => {
    const validate = responseAjv.compile(schema);
    return (data) => {
      if (!validate(data)) throw new Error(`response of ${method} ${url} does not match its schema: ${responseAjv.errorsText(validate.errors as ErrorObject[])}`);
      return JSON.stringify(data);
    };
  });

  app.setErrorHandler((error, req, reply) => {
    const { problem, unexpected } = toProblem(error, req.url.split('?')[0]);
    if (unexpected) o.log?.error({ err: error, method: req.method, url: req.url }, 'HTTP API request failed');
    if (problem.status === 401) reply.header('www-authenticate', 'Bearer realm="transfer-api"');
    if (problem.code === PROBLEM_CODES.IDEMPOTENCY_KEY_IN_FLIGHT) reply.header('retry-after', '1');
    return reply.code(problem.status).type('application/problem+json').send(JSON.stringify(problem));
  });
  app.setNotFoundHandler((req) => {
    throw new ApiProblem(404, PROBLEM_CODES.NOT_FOUND, `no route ${req.method} ${req.url.split('?')[0]}`);
  });

  app.addHook('onRequest', async (req) => {
    if (req.url === '/openapi.json' || keys.length === 0) return;
    if (!authorized(req.headers.authorization)) {
      throw new ApiProblem(401, PROBLEM_CODES.UNAUTHORIZED, req.headers.authorization ? 'the API key is not valid' : 'an API key is required: Authorization: Bearer <key>');
    }
  });
  // cancel and approve take an optional body: none at all reads as {}.
  app.addHook('preValidation', async (req) => {
    if (req.method === 'POST' && req.body === undefined && /\/(cancel|approve)$/.test(req.routeOptions.url ?? '')) req.body = {};
  });

  /**
   * One request per key at a time across every API process of this ledger: the key (with its
   * namespace) is claimed in shard 0's api_key_claims for the whole request, renewed while it runs
   * and released once answered. A claim whose process died expires after the lease.
   */
  async function exclusive<T>(slot: string, key: string, fn: () => Promise<T>): Promise<T> {
    const owner = `${instance}/${randomUUID()}`;
    if (!(await ledger.claimKey(slot, owner, leaseMs))) {
      throw new ApiProblem(409, PROBLEM_CODES.IDEMPOTENCY_KEY_IN_FLIGHT, `the first request with Idempotency-Key ${key} is still in flight; retry once it has been answered`, ['Idempotency-Key']);
    }
    const renew = setInterval(() => {
      ledger.renewKeyClaim(slot, owner, leaseMs).catch((error: unknown) => o.log?.error({ err: error, slot }, 'could not renew an Idempotency-Key claim'));
    }, leaseMs / 3);
    renew.unref();
    try {
      return await fn();
    } finally {
      clearInterval(renew);
      await ledger.releaseKeyClaim(slot, owner).catch((error: unknown) => o.log?.error({ err: error, slot }, 'could not release an Idempotency-Key claim (it expires)'));
    }
  }

  async function describe(id: string): Promise<TransferView> {
    return describeTransfer(client, id, readLedger).catch((error: Error) => {
      if (isNotFound(error)) throw new ApiProblem(404, PROBLEM_CODES.NOT_FOUND, `transfer ${id} not found`);
      throw error;
    });
  }

  async function transferView(id: string): Promise<Transfer> {
    return apiTransfer(await describe(id));
  }

  /** Signals and updates only make sense for a running transfer: unknown id → 404, ended → 409. */
  async function mustBeRunning(id: string, verb: 'cancel' | 'approve'): Promise<void> {
    const d = await client.workflow.getHandle(id).describe().catch((error: unknown) => {
      if (isNotFound(error)) throw new ApiProblem(404, PROBLEM_CODES.NOT_FOUND, `transfer ${id} not found`);
      throw error;
    });
    if (d.status.name !== 'RUNNING') {
      const status = d.typedSearchAttributes.get(TransferStatusKey) ?? d.status.name;
      throw new ApiProblem(409, verb === 'cancel' ? PROBLEM_CODES.CANCEL_REJECTED : PROBLEM_CODES.APPROVE_REJECTED, `cannot ${verb} ${id}: the transfer already ended ${status}`);
    }
  }

  const routes: Route[] = [
    {
      method: 'POST', url: '/v1/transfers', operationId: 'startTransfer', tags: ['transfers'],
      summary: 'Start a transfer (idempotent: the Idempotency-Key is the transfer id)',
      schema: { headers: idempotencyHeader(TRANSFER_KEY), querystring: { type: 'object', additionalProperties: false, properties: { wait: S.Wait } }, body: S.TransferCreate, response: { 201: S.Transfer } },
      errors: [400, 401, 409, 413, 415, 422, 503],
      handler: async (req, reply) => {
        const key = req.headers['idempotency-key']!;
        const waitMs = parseWait(req.query['wait']);
        const body = req.body as TransferCreate;
        return exclusive(`transfer:${key}`, key, async () => {
          const request = { transferId: key, ...body };
          validateTransfer(request, key); // the CLI's checks and codes, before anything starts
          const started = await startTransfer(client, taskQueue, request);
          let view: Transfer;
          if (waitMs > 0) {
            // Up to `wait` for the outcome; past it (or on any error of the wait) the transfer as it is now.
            await client.connection.withDeadline(Date.now() + waitMs, () => started.handle.result()).catch(() => undefined);
            view = await transferView(key);
          } else if (started.started) {
            view = { id: key, status: 'RUNNING', ...started.request };
          } else {
            view = await transferView(key);
          }
          reply.code(201).header('location', `/v1/transfers/${encodeURIComponent(key)}`);
          if (!started.started) reply.header('idempotent-replayed', 'true');
          return view;
        });
      },
    },
    {
      method: 'GET', url: '/v1/transfers', operationId: 'listTransfers', tags: ['transfers'],
      summary: 'List transfers (Temporal visibility), newest first, filtered and paginated by cursor',
      schema: {
        querystring: {
          type: 'object', additionalProperties: false,
          properties: { status: S.TransferStatus, from: S.AccountId, to: S.AccountId, currency: S.Currency, limit: S.Limit, cursor: S.Cursor },
        },
        response: { 200: S.TransferList },
      },
      errors: [400, 401, 503],
      handler: async (req) => {
        const q = req.query;
        const clauses = [`WorkflowType = '${TRANSFER_WORKFLOW}'`];
        // Values passed their schema (enums and id patterns without quotes): nothing to escape.
        if (q['status']) clauses.push(`TransferStatus = '${q['status']}'`);
        if (q['from']) clauses.push(`FromAccount = '${q['from']}'`);
        if (q['to']) clauses.push(`ToAccount = '${q['to']}'`);
        if (q['currency']) clauses.push(`Currency = '${q['currency']}'`);
        const query = clauses.join(' AND ');
        const pageSize = q['limit'] ? Number(q['limit']) : 50;
        const token = q['cursor'] ? readCursor(q['cursor'], query) : undefined;
        const namespace = client.options.namespace;
        const response = await client.workflowService.listWorkflowExecutions({ namespace, query, pageSize, ...(token ? { nextPageToken: token } : {}) }).catch((error: { code?: number }) => {
          if (token && error.code === 3) throw new ApiProblem(400, Refusal.INVALID_INPUT, 'cursor is not valid (not a nextCursor of this list)', ['cursor']);
          throw error;
        });
        const items = await Promise.all(response.executions.map(async (raw) => {
          const wf = await executionInfoFromRaw(raw, client.options.loadedDataConverter, raw, namespace);
          const memo = (wf.memo?.['request'] ?? {}) as Partial<Record<'from' | 'to' | 'amount' | 'currency' | 'memo', unknown>>;
          const attrs = wf.typedSearchAttributes;
          return clean<Transfer>({
            id: wf.workflowId,
            status: (attrs.get(TransferStatusKey) as Transfer['status'] | undefined) ?? 'RUNNING',
            from: attrs.get(FromAccountKey) ?? String(memo.from ?? ''),
            to: attrs.get(ToAccountKey) ?? String(memo.to ?? ''),
            amount: String(memo.amount ?? attrs.get(AmountKey) ?? ''),
            currency: attrs.get(CurrencyKey) ?? String(memo.currency ?? ''),
            memo: typeof memo.memo === 'string' && memo.memo ? memo.memo : undefined,
            runStatus: wf.status.name,
            startedAt: wf.startTime.toISOString(),
            closedAt: wf.closeTime?.toISOString(),
          });
        }));
        const next = response.nextPageToken && response.nextPageToken.length > 0 ? writeCursor(Buffer.from(response.nextPageToken), query) : undefined;
        return { items, ...(next ? { nextCursor: next } : {}) };
      },
    },
    {
      method: 'GET', url: '/v1/transfers/:transferId', operationId: 'getTransfer', tags: ['transfers'],
      summary: 'A transfer: status, step, outcome (with detail=full, also what `transfer status` reads: result, state, ledger)',
      schema: {
        params: transferParams(),
        querystring: { type: 'object', additionalProperties: false, properties: { detail: { type: 'string', enum: ['full'], description: 'full: add result, state and ledger as `transfer status --json` shows them.' } } },
        response: { 200: S.TransferDetail },
      },
      errors: [400, 401, 404, 503],
      handler: async (req) => {
        const view = await describe(req.params['transferId']!);
        if (req.query['detail'] !== 'full') return apiTransfer(view);
        return clean<TransferDetail>({ ...apiTransfer(view), result: view.result, state: view.state, ledger: view.ledger });
      },
    },
    {
      method: 'POST', url: '/v1/transfers/:transferId/cancel', operationId: 'cancelTransfer', tags: ['transfers'],
      summary: 'Cancel a transfer that has not started posting; holds are released',
      schema: { params: transferParams(), body: S.CancelRequest, response: { 200: S.Transfer } },
      errors: [400, 401, 404, 409, 413, 415, 503],
      handler: async (req) => {
        const id = req.params['transferId']!;
        const body = req.body as { reason?: string };
        validateCancelRequest(body);
        await mustBeRunning(id, 'cancel');
        const result = await cancelTransfer(client, id, body.reason).catch(async (error: Error) => {
          await mustBeRunning(id, 'cancel'); // it may have ended meanwhile: say so plainly
          throw new ApiProblem(409, PROBLEM_CODES.CANCEL_REJECTED, `cannot cancel ${id}: ${error.cause instanceof Error ? error.cause.message : error.message}`);
        });
        return resultView(result);
      },
    },
    {
      method: 'POST', url: '/v1/transfers/:transferId/approve', operationId: 'approveTransfer', tags: ['transfers'],
      summary: 'Approve a transfer waiting for approval',
      schema: { params: transferParams(), body: S.ApproveRequest, response: { 200: S.Approval } },
      errors: [400, 401, 404, 409, 413, 415, 503],
      handler: async (req) => {
        const id = req.params['transferId']!;
        const by = (req.body as { by?: string }).by;
        if (by !== undefined && !PERSON.test(by)) throw new ApiProblem(400, Refusal.INVALID_INPUT, 'by must be a name of 1 to 100 characters without control characters', ['by']);
        await mustBeRunning(id, 'approve');
        const answer = await approveTransfer(client, id, by).catch((error: Error) => {
          throw new ApiProblem(409, PROBLEM_CODES.APPROVAL_REFUSED, `approval of ${id} refused: ${error.cause instanceof Error ? error.cause.message : error.message}`);
        });
        return { id, approved: answer.approved, ...(answer.by ? { by: answer.by } : {}) };
      },
    },
    {
      method: 'POST', url: '/v1/accounts', operationId: 'openAccount', tags: ['accounts'],
      summary: 'Open an account (idempotent by id: 201 when opened, 200 when it was already open with the same parameters)',
      schema: { body: S.AccountOpen, response: { 200: S.Account, 201: S.Account } },
      errors: [400, 401, 409, 413, 415, 503],
      handler: async (req, reply) => {
        const body = req.body as { id: string; currency: string; overdraftLimit?: string };
        const overdraft = body.overdraftLimit === undefined || /^0+$/.test(body.overdraftLimit) ? undefined : body.overdraftLimit;
        const { account, created } = await ledger.openAccount({ id: body.id, currency: body.currency, ...(overdraft ? { overdraftLimit: overdraft } : {}) });
        reply.code(created ? 201 : 200).header('location', `/v1/accounts/${encodeURIComponent(account.id)}`);
        return accountView(account);
      },
    },
    {
      method: 'GET', url: '/v1/accounts/:accountId', operationId: 'getAccount', tags: ['accounts'],
      summary: 'Balances of one account',
      schema: { params: accountParams(), response: { 200: S.Account } },
      errors: [400, 401, 404, 503],
      handler: async (req) => accountView(await ledger.getAccount(req.params['accountId']!)),
    },
    ...(['deposit', 'withdrawal'] as const).map((kind): Route => ({
      method: 'POST', url: `/v1/accounts/:accountId/${kind === 'deposit' ? 'deposits' : 'withdrawals'}`, operationId: kind === 'deposit' ? 'deposit' : 'withdraw', tags: ['accounts'],
      summary: kind === 'deposit' ? 'Add money from outside (idempotent by Idempotency-Key)' : 'Take money out (idempotent by Idempotency-Key)',
      schema: { params: accountParams(), headers: idempotencyHeader(MOVEMENT_KEY), body: S.MovementRequest, response: { 201: S.Movement } },
      errors: [400, 401, 404, 409, 413, 415, 422, 503],
      handler: async (req, reply) => {
        const accountId = req.params['accountId']!;
        const key = req.headers['idempotency-key']!;
        const body = req.body as { amount: string; currency: string };
        return exclusive(`movement:${key}`, key, async () => {
          // The ledger's barrier is per shard: a key first used on another shard's account is caught
          // here. The claim makes this look-up and the movement one step for the key: a request with
          // it on another account (another shard) waits its turn, then finds this one's record.
          const earlier = await ledger.movementRecords(key);
          const requested = { kind, account: accountId, amount: body.amount, currency: body.currency };
          const differ = (r: (typeof earlier)[number]) => [
            ...(r.operation !== kind ? ['kind'] : []),
            ...(r.account !== undefined && r.account !== accountId ? ['account'] : []),
            ...(r.amount !== undefined && r.amount !== body.amount ? ['amount'] : []),
            ...(r.currency !== undefined && r.currency !== body.currency ? ['currency'] : []),
          ];
          const other = earlier.find((r) => differ(r).length > 0 || (r.account === undefined && r.shard !== ledger.shardFor(accountId).shard));
          const reused = (fields: string[]) => new ApiProblem(422, Refusal.IDEMPOTENCY_KEY_REUSED,
            `Idempotency-Key ${key} was first used for a different request${fields.length ? `: ${fields.join(', ')} ${fields.length === 1 ? 'differs' : 'differ'}` : ''} (requested ${JSON.stringify(requested)}); nothing was done`, fields);
          if (other) throw reused(differ(other));
          const input = { key, accountId, amount: body.amount, currency: body.currency };
          const result = await (kind === 'deposit' ? ledger.deposit(input) : ledger.withdraw(input)).catch((error: unknown) => {
            if (error instanceof RefusalError && error.code === Refusal.IDEMPOTENCY_KEY_REUSED) throw reused([]);
            throw error;
          });
          const leg = result.postings.find((p) => p.accountId === accountId)!;
          reply.code(201).header('location', `/v1/accounts/${encodeURIComponent(accountId)}`);
          if (result.replayed) reply.header('idempotent-replayed', 'true');
          const movement: Movement = { key, kind, account: accountId, amount: leg.amount.replace(/^-/, ''), currency: leg.currency, entryId: leg.entryId, createdAt: leg.createdAt };
          return movement;
        });
      },
    })),
  ];

  const openapi = buildOpenApi(routes);
  app.get('/openapi.json', async (_req, reply) => reply.type('application/json').send(JSON.stringify(openapi, null, 2)));
  for (const route of routes) {
    app.route({ method: route.method, url: route.url, schema: route.schema, handler: route.handler as never });
  }
  return app;
}

function transferParams(): S.JsonSchema {
  return { type: 'object', additionalProperties: false, required: ['transferId'], properties: { transferId: S.TransferId } };
}
function accountParams(): S.JsonSchema {
  return { type: 'object', additionalProperties: false, required: ['accountId'], properties: { accountId: S.AccountId } };
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; message?: string };
  return e?.name === 'WorkflowNotFoundError' || /not found/i.test(e?.message ?? '');
}

/** "5s" / "500ms" → ms (the schema checked the form; the bound is checked here). */
function parseWait(text: string | undefined): number {
  if (!text) return 0;
  const ms = text.endsWith('ms') ? Number(text.slice(0, -2)) : Number(text.slice(0, -1)) * 1000;
  if (ms > MAX_WAIT_MS) throw new ApiProblem(400, Refusal.INVALID_INPUT, `wait must be at most 60s (got ${JSON.stringify(text)})`, ['wait']);
  return ms;
}

/**
 * The cursor wraps Temporal's nextPageToken with a digest of the query it belongs to, so a cursor
 * replayed with other filters is refused instead of paging through a different list.
 */
function queryDigest(query: string): string {
  return createHash('sha256').update(query).digest('base64url').slice(0, 16);
}
function writeCursor(token: Buffer, query: string): string {
  return Buffer.from(JSON.stringify({ q: queryDigest(query), t: token.toString('base64') })).toString('base64url');
}
function readCursor(cursor: string, query: string): Buffer {
  let parsed: { q?: unknown; t?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as typeof parsed;
  } catch {
    parsed = {};
  }
  if (typeof parsed?.t !== 'string' || typeof parsed.q !== 'string') throw new ApiProblem(400, Refusal.INVALID_INPUT, 'cursor is not valid (not a nextCursor of this API)', ['cursor']);
  if (parsed.q !== queryDigest(query)) throw new ApiProblem(400, Refusal.INVALID_INPUT, 'cursor belongs to a list with other filters: pass the same filters as for the first page', ['cursor']);
  return Buffer.from(parsed.t, 'base64');
}

/** Drops undefined members (responses are closed objects; absent is absent). */
function clean<T>(o: Record<string, unknown>): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function apiTransfer(v: TransferView): Transfer {
  return clean<Transfer>({
    id: v.id, status: v.status, from: v.from, to: v.to, amount: v.amount, currency: v.currency,
    memo: v.memo || undefined, reason: v.reason, message: v.message,
    step: v.state?.step, runStatus: v.runStatus, sides: v.result?.sides,
    startedAt: v.startedAt, closedAt: v.closedAt,
  });
}

function resultView(r: TransferResult): Transfer {
  return clean<Transfer>({
    id: r.transferId, status: r.status, from: r.from, to: r.to, amount: r.amount, currency: r.currency,
    memo: r.memo || undefined, reason: r.reason, message: r.message, sides: r.sides,
  });
}

function accountView(a: AccountView): Account {
  return { id: a.id, currency: a.currency, status: a.status, shard: a.shard, posted: a.posted, pendingDebits: a.pendingDebits, pendingCredits: a.pendingCredits, overdraftLimit: a.overdraftLimit, available: a.available };
}
