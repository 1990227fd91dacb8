import type { Client } from '@temporalio/client';
import type { Ledger } from '../ledger/ledger.js';
import { createApiServer } from './server.js';

/** The OpenAPI document exactly as a server serves it (a server that connects to nothing, asked in-process). */
export async function openApiDocument(): Promise<unknown> {
  const app = await createApiServer({ client: {} as Client, taskQueue: 'transfers', ledger: {} as Ledger });
  try {
    const response = await app.inject({ method: 'GET', url: '/openapi.json' });
    return JSON.parse(response.body) as unknown;
  } finally {
    await app.close();
  }
}
