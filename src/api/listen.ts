import type { Client } from '@temporalio/client';
import type { Ledger } from '../ledger/ledger.js';
import { apiKeysFromEnv, assertBindable } from './auth.js';
import { createApiServer } from './server.js';

export interface RunningApi {
  url: string;
  host: string;
  port: number;
  authenticated: boolean;
  stop(): Promise<void>;
}

/**
 * The API server of `transfer serve` and `transfer up`: keys from the environment, and without keys
 * nothing but loopback is bound.
 */
export async function listenApi(o: { client: Client; taskQueue: string; ledger: Ledger; host: string; port: number; log?: { error(fields: object, message: string): void } }): Promise<RunningApi> {
  const keys = apiKeysFromEnv();
  assertBindable(o.host, keys);
  const app = await createApiServer({ client: o.client, taskQueue: o.taskQueue, ledger: o.ledger, apiKeys: keys, ...(o.log ? { log: o.log } : {}) });
  try {
    await app.listen({ host: o.host, port: o.port });
  } catch (error) {
    await app.close(); // the port was taken (EADDRINUSE): the caller may try another
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  const shownHost = o.host.includes(':') ? `[${o.host}]` : o.host;
  return { url: `http://${shownHost}:${port}`, host: o.host, port, authenticated: keys.length > 0, stop: () => app.close() };
}
