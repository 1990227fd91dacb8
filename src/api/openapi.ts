import { COMPONENTS, type JsonSchema } from './schemas.js';

/**
 * The OpenAPI 3.1 document, built from the route table and the very schema objects the server
 * validates with (schemas.ts). A schema object that is a named component becomes a $ref.
 */
export interface RouteDoc {
  method: 'GET' | 'POST';
  /** Fastify form: /v1/transfers/:transferId */
  url: string;
  operationId: string;
  summary: string;
  tags: string[];
  schema: { params?: JsonSchema; querystring?: JsonSchema; headers?: JsonSchema; body?: JsonSchema; response: Record<number, JsonSchema> };
  /** Problem statuses this route can answer with. */
  errors: number[];
}

export const API_VERSION = '1.0.0';

const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid input (malformed JSON, wrong types, unknown fields, bad values): nothing was changed',
  401: 'No or wrong API key',
  404: 'Not found',
  409: 'Conflict: the Idempotency-Key is in flight, or the transfer is in a state that refuses this',
  413: 'Body larger than 16 KiB',
  415: 'Body is not application/json',
  422: 'Refused: the key was used with another request (fields named), or the ledger refused (code)',
  503: 'A dependency (Temporal, PostgreSQL) is unreachable',
};

export function buildOpenApi(routes: readonly RouteDoc[]): Record<string, unknown> {
  const names = new Map<unknown, string>(Object.entries(COMPONENTS).map(([name, schema]) => [schema, name]));
  const ref = (schema: unknown, top = true): unknown => {
    if (!top && names.has(schema)) return { $ref: `#/components/schemas/${names.get(schema)}` };
    if (Array.isArray(schema)) return schema.map((s) => ref(s, false));
    if (schema && typeof schema === 'object') return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, ref(v, false)]));
    return schema;
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const parameters = [
      ...params(r.schema.params, 'path'),
      ...params(r.schema.querystring, 'query'),
      ...params(r.schema.headers, 'header'),
    ];
    const responses: Record<string, unknown> = {};
    for (const [status, schema] of Object.entries(r.schema.response)) {
      responses[status] = { description: status === '201' ? 'Created (or the same request again: header Idempotent-Replayed: true)' : 'OK', content: { 'application/json': { schema: ref(schema, false) } } };
    }
    for (const status of r.errors) {
      responses[String(status)] = { description: ERROR_TEXT[status] ?? 'Error', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
    }
    (paths[path] ??= {})[r.method.toLowerCase()] = {
      operationId: r.operationId,
      summary: r.summary,
      tags: r.tags,
      ...(parameters.length ? { parameters: parameters.map((p) => ({ ...p, schema: ref(p.schema, false) })) } : {}),
      ...(r.schema.body ? { requestBody: { required: !/cancel|approve/.test(r.url), content: { 'application/json': { schema: ref(r.schema.body, false) } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'durable-transfer HTTP API',
      version: API_VERSION,
      description: 'Money transfers between accounts of a sharded PostgreSQL ledger, coordinated by a Temporal saga. Amounts are digit strings of minor units. Errors are RFC 9457 problem details. See docs/api.md.',
    },
    servers: [{ url: 'http://127.0.0.1:8787' }],
    security: [{ bearer: [] }],
    tags: [{ name: 'transfers' }, { name: 'accounts' }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key from TRANSFER_API_KEYS (none configured: no authentication, loopback only).' } },
      schemas: Object.fromEntries(Object.entries(COMPONENTS).map(([name, schema]) => [name, ref(schema, true)])),
    },
  };
}

function params(schema: JsonSchema | undefined, where: 'path' | 'query' | 'header'): { name: string; in: string; required: boolean; schema: unknown; description?: string }[] {
  const properties = (schema?.['properties'] ?? {}) as Record<string, JsonSchema>;
  const required = (schema?.['required'] ?? []) as string[];
  return Object.entries(properties).map(([name, s]) => ({
    name: where === 'header' ? name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase()) : name,
    in: where,
    required: where === 'path' || required.includes(name),
    ...(typeof s['description'] === 'string' ? { description: s['description'] } : {}),
    schema: s,
  }));
}

