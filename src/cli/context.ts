import { Client, Connection } from '@temporalio/client';
import { readFile } from 'node:fs/promises';
import { ledgerConfig, temporalConfig, type TemporalConfig } from '../config.js';
import { parseSlotMap } from '../domain/slots.js';
import { readStackInfo } from '../embedded/stack.js';
import { Ledger } from '../ledger/ledger.js';
import { CliError, EXIT } from './output.js';

/**
 * Where the CLI finds the system: environment variables first (an external deployment), otherwise
 * the embedded stack started by `transfer up` (its stack.json), otherwise a clear error.
 */
export async function openLedger(): Promise<Ledger> {
  const fromEnv = ledgerConfig();
  if (fromEnv) return Ledger.connect({ ...fromEnv, poolSize: 4 });
  const stack = await readStackInfo();
  if (!stack) throw new CliError('no ledger configured: start the stack with `npx transfer up` or set LEDGER_SHARD_URLS', EXIT.UNREACHABLE, 'UNREACHABLE');
  return Ledger.connect({ shardUrls: stack.shardUrls, slotMap: parseSlotMap(stack.slotMap, stack.shardUrls.length), poolSize: 4 });
}

export async function temporalTarget(): Promise<TemporalConfig> {
  if (process.env.TEMPORAL_ADDRESS) return temporalConfig();
  const stack = await readStackInfo();
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
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...(await connectionOptions(config)), connectTimeout: '5s' });
  } catch (error) {
    throw new CliError(`Temporal at ${config.address} is unreachable: ${(error as Error).message}`, EXIT.UNREACHABLE, 'UNREACHABLE');
  }
  return { client: new Client({ connection, namespace: config.namespace }), config, close: () => connection.close() };
}
