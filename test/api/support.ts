import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect } from 'vitest';
import { createApiServer } from '../../src/api/server.js';
import { COMPONENTS } from '../../src/api/schemas.js';
import type { TestLedger } from '../support/ledger.js';
import { createTestWorker, testPolicy, uniqueTaskQueue, useDevServer } from '../support/temporal.js';

/**
 * A real API server on an ephemeral port of 127.0.0.1, on the run's dev server with a real worker
 * and a cloned ledger. Transfers of 1000.00 and more wait for approval.
 */
export interface ApiHarness {
  t: TestLedger;
  env: TestWorkflowEnvironment;
  app: FastifyInstance;
  baseUrl: string;
  apiKey: string;
  taskQueue: string;
}

export const API_KEY = 'test-key-0123456789abcdef';
export const OTHER_KEY = 'other-key-fedcba9876543210';

export function useApiServer(): ApiHarness {
  const h = { apiKey: API_KEY, taskQueue: uniqueTaskQueue() } as ApiHarness;
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  useDevServer((t, env) => {
    h.t = t;
    h.env = env;
  });
  beforeAll(async () => {
    worker = await createTestWorker(h.env, h.t.ledger, { taskQueue: h.taskQueue, policy: testPolicy({ approvalThreshold: '100000' }) });
    running = worker.run();
    h.app = await createApiServer({ client: h.env.client, taskQueue: h.taskQueue, ledger: h.t.ledger, apiKeys: [API_KEY, OTHER_KEY], log: { error: (f, m) => console.error(m, f) } });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    h.baseUrl = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await h.app?.close();
    worker?.shutdown();
    await running;
  });
  return h;
}

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
  contentType: string;
}

/** One HTTP request with fetch; the body parsed when it is JSON. */
export async function http(h: ApiHarness, method: string, path: string, o: { body?: unknown; raw?: string; headers?: Record<string, string>; auth?: string | null } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(o.auth === null ? {} : { authorization: `Bearer ${o.auth ?? h.apiKey}` }), ...o.headers };
  let body: string | undefined = o.raw;
  if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers['content-type'] ??= 'application/json';
  } else if (o.raw !== undefined) headers['content-type'] ??= 'application/json';
  const response = await fetch(`${h.baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  return { status: response.status, headers: response.headers, body: parsed, contentType: response.headers.get('content-type') ?? '' };
}

const ajv = new Ajv({ strict: true, allErrors: true });
const validators = Object.fromEntries(Object.entries(COMPONENTS).map(([name, schema]) => [name, ajv.compile(schema)]));

/** The answer is a problem detail of this code (status, content type, schema). */
export function expectProblem(a: Answer, status: number, code: string): void {
  expect({ status: a.status, contentType: a.contentType.split(';')[0], code: a.body?.code }, JSON.stringify(a.body)).toEqual({ status, contentType: 'application/problem+json', code });
  expect(a.body.type).toBe(`urn:durable-transfer:problem:${code}`);
  expect(a.body.status).toBe(status);
  expectSchema('Problem', a.body);
}

export function expectSchema(name: keyof typeof COMPONENTS & string, value: unknown): void {
  const validate = validators[name]!;
  expect(validate(value) ? [] : validate.errors, `${name}: ${JSON.stringify(value)}`).toEqual([]);
}

export async function checkedInOpenApi(): Promise<unknown> {
  return JSON.parse(await readFile(new URL('../../docs/openapi.json', import.meta.url), 'utf8'));
}

export async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}
