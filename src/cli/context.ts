import type { Client, Connection } from '@temporalio/client';
import { readFile } from 'node:fs/promises';
import { batchSettingsFromEnv, ledgerConfig, temporalConfig, type TemporalConfig } from '../config.js';
import { parseSlotMap } from '../domain/slots.js';
import type { StackInfo } from '../embedded/stack-file.js';
import type { Ledger } from '../ledger/ledger.js';
import { CliError, EXIT } from './output.js';

/*
 * Heavy modules (the Temporal SDK, pg, the embedded stack) are imported when a command needs them:
 * `--help` and input that fails validation answer without loading them.
 */

/** stack.json of the embedded stack, only consulted when the environment does not say where things are. */
async function stackInfo(): Promise<StackInfo | undefined> {
  const { readStackInfo } = await import('../embedded/stack-file.js');
  return readStackInfo();
}

/**
 * Where the CLI finds the system: environment variables first (an external deployment), otherwise
 * the embedded stack started by `transfer up` (its stack.json), otherwise a clear error.
 */
export async function openLedger(): Promise<Ledger> {
  const { Ledger } = await import('../ledger/ledger.js');
  const fromEnv = ledgerConfig();
  if (fromEnv) return Ledger.connect({ ...fromEnv, poolSize: 4, batch: batchSettingsFromEnv() });
  const stack = await stackInfo();
  if (!stack) throw new CliError('no ledger configured: start the stack with `npx transfer up` or set LEDGER_SHARD_URLS', EXIT.UNREACHABLE, 'UNREACHABLE');
  return Ledger.connect({ shardUrls: stack.shardUrls, slotMap: parseSlotMap(stack.slotMap, stack.shardUrls.length), poolSize: 4, batch: batchSettingsFromEnv() });
}

/** A ledger for one command, closed afterwards whatever happens. */
export async function withLedger<T>(fn: (ledger: Ledger) => Promise<T>): Promise<T> {
  const ledger = await openLedger();
  try {
    return await fn(ledger);
  } finally {
    await ledger.close();
  }
}

/**
 * The running embedded stack's HTTP API, when nothing in the environment points the CLI elsewhere
 * (no TEMPORAL_ADDRESS, no LEDGER_SHARD_URLS / DATABASE_URL): then it serves the same Temporal and
 * ledger the CLI would use. With TRANSFER_API_KEYS (or _FILE) set, the first key is presented.
 */
export async function stackApi(): Promise<{ url: string; headers: Record<string, string> } | undefined> {
  if (process.env.TEMPORAL_ADDRESS || ledgerConfig()) return undefined;
  const stack = await stackInfo();
  if (!stack?.apiUrl) return undefined;
  let key: string | undefined;
  try {
    key = (await import('../api/auth.js')).apiKeysFromEnv()[0];
  } catch {
    key = undefined; // unusable keys: ask without one (a 401 falls back to Temporal)
  }
  return { url: stack.apiUrl, headers: { accept: 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) } };
}

export async function temporalTarget(): Promise<TemporalConfig> {
  if (process.env.TEMPORAL_ADDRESS) return temporalConfig();
  const stack = await stackInfo();
  if (stack) return { ...temporalConfig(), address: stack.temporalAddress, namespace: stack.namespace, taskQueue: stack.taskQueue };
  return temporalConfig();
}

export async function connectionOptions(config: TemporalConfig) {
  const tls = config.tls
    ? {
        ...(config.tls.ca ? { serverRootCACertificate: await readFile(config.tls.ca) } : {}),
        ...(config.tls.cert && config.tls.key ? { clientCertPair: { crt: await readFile(config.tls.cert), key: await readFile(config.tls.key) } } : {}),
      }
    : config.apiKey ? true : undefined;
  return { address: config.address, ...(tls ? { tls } : {}), ...(config.apiKey ? { apiKey: config.apiKey } : {}) };
}

export async function openClient(): Promise<{ client: Client; config: TemporalConfig; close: () => Promise<void> }> {
  const config = await temporalTarget();
  const sdk = await import('@temporalio/client');
  let connection: Connection;
  try {
    connection = await sdk.Connection.connect({ ...(await connectionOptions(config)), connectTimeout: '5s' });
  } catch (error) {
    throw new CliError(`Temporal at ${config.address} is unreachable: ${(error as Error).message}`, EXIT.UNREACHABLE, 'UNREACHABLE');
  }
  return { client: new sdk.Client({ connection, namespace: config.namespace }), config, close: () => connection.close() };
}
