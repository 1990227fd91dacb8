import type { Command } from 'commander';
import { openClient, openLedger } from '../context.js';
import { CliError, checkPositiveInteger, EXIT, type GlobalOptions } from '../output.js';
import { interrupted } from '../signals.js';

const say = (line: string) => process.stderr.write(`${line}\n`);

export const DEFAULT_API_PORT = 8787;

export function registerServeCommand(program: Command, _globals: () => GlobalOptions): void {
  program
    .command('serve')
    .description('the HTTP API (/v1/…, /openapi.json) for other services; bearer keys from TRANSFER_API_KEYS')
    .option('--host <host>', 'address to listen on (without API keys only loopback is allowed)', '127.0.0.1')
    .option('--port <port>', `port (0: any free one)`, String(DEFAULT_API_PORT))
    .action(async (opts: { host: string; port: string }) => {
      const port = opts.port === '0' ? 0 : checkPositiveInteger(opts.port, '--port', 65535);
      const [{ listenApi }, { apiKeysFromEnv, assertBindable }] = await Promise.all([import('../../api/listen.js'), import('../../api/auth.js')]);
      try {
        assertBindable(opts.host, apiKeysFromEnv()); // before connecting to anything
      } catch (error) {
        throw new CliError((error as Error).message, EXIT.USAGE, 'NOT_CONFIGURED');
      }
      const { createLogger } = await import('../../observability/logger.js');
      const logger = createLogger('transfer-api');
      const temporal = await openClient();
      const ledger = await openLedger();
      try {
        const api = await listenApi({ client: temporal.client, taskQueue: temporal.config.taskQueue, ledger, host: opts.host, port, log: logger });
        say(`HTTP API on ${api.url} (OpenAPI: ${api.url}/openapi.json; ${api.authenticated ? 'bearer API keys required' : 'no API keys configured: loopback only, no authentication'}). Ctrl-C stops.`);
        const signal = await interrupted();
        say(`${signal}: stopping the HTTP API…`);
        await api.stop();
      } finally {
        await ledger.close().catch(() => undefined);
        await temporal.close().catch(() => undefined);
      }
    });
}
