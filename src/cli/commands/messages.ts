import type { Command } from 'commander';
import { CliError, emit, EXIT, type GlobalOptions } from '../output.js';
import { openClient } from '../context.js';
import { interrupted } from '../signals.js';

const say = (line: string) => process.stderr.write(`${line}\n`);

/** A producer database URL: --database, else MESSAGES_PRODUCER_URL. */
function producerUrl(option?: string): string {
  const url = option ?? process.env.MESSAGES_PRODUCER_URL;
  if (!url) throw new CliError('name the producer database: --database postgres://… (or MESSAGES_PRODUCER_URL)', EXIT.USAGE, 'USAGE');
  if (!/^postgres(ql)?:\/\//.test(url)) throw new CliError(`--database must be a postgres:// URL (got ${JSON.stringify(url.slice(0, 40))})`, EXIT.USAGE, 'USAGE');
  return url;
}


export function registerMessageCommands(program: Command, globals: () => GlobalOptions): void {
  const messages = program.command('messages').description("the transfer request table other services write in their own database's transaction");

  messages
    .command('install')
    .description('create (or update) transfer_outbox.transfer_requests, its NOTIFY trigger and publication in a database')
    .option('--database <url>', 'the producer service’s PostgreSQL')
    .action(async (opts: { database?: string }) => {
      const url = producerUrl(opts.database);
      const [{ createPool }, { installRequestTable }] = await Promise.all([import('../../db/transaction.js'), import('../../messaging/requests.js')]);
      const pool = createPool(url, 1);
      try {
        await installRequestTable(pool);
      } finally {
        await pool.end();
      }
      emit(globals(), { installed: 'transfer_outbox.transfer_requests' }, () => 'installed transfer_outbox.transfer_requests (with NOTIFY trigger and publication transfer_requests)');
    });

  messages
    .command('status')
    .description('requests by state, the oldest pending one, and the log relay slot’s lag')
    .option('--database <url>', 'the producer service’s PostgreSQL')
    .action(async (opts: { database?: string }) => {
      const url = producerUrl(opts.database);
      const [{ createPool }, { slotLag }, { REQUESTS_TABLE }] = await Promise.all([import('../../db/transaction.js'), import('../../messaging/relay-log.js'), import('../../messaging/requests.js')]);
      const pool = createPool(url, 1);
      try {
        const { rows } = await pool.query<{ state: string; n: string; oldest: string | null }>(
          `SELECT state, count(*)::text AS n, extract(epoch FROM now() - min(requested_at))::text AS oldest FROM ${REQUESTS_TABLE} GROUP BY state ORDER BY state`);
        const slot = await slotLag(pool);
        const byState = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
        const oldestPending = Number(rows.find((r) => r.state === 'pending')?.oldest ?? 0);
        emit(globals(), { states: byState, oldestPendingSeconds: oldestPending, slot }, () => [
          `requests: ${rows.map((r) => `${r.state} ${r.n}`).join(', ') || 'none'}`,
          ...(byState['pending'] ? [`oldest pending: ${oldestPending.toFixed(1)} s`] : []),
          slot.exists ? `log relay slot: ${slot.active ? 'attached' : 'NOT attached'}, ${slot.lagBytes} bytes behind` : 'log relay slot: none',
        ].join('\n'));
      } finally {
        await pool.end();
      }
    });

  program
    .command('relay')
    .description('start the transfers requested in a producer database: polling (LISTEN/NOTIFY + interval) or tailing its WAL')
    .option('--database <url>', 'the producer service’s PostgreSQL')
    .option('--mode <mode>', 'poll or log', 'poll')
    .option('--interval <ms>', 'poll mode: fallback poll interval', '1000')
    .option('--no-notify', 'poll mode: do not LISTEN, only poll')
    .option('--slot <name>', 'log mode: replication slot', 'transfer_requests_relay')
    .action(async (opts: { database?: string; mode: string; interval: string; notify: boolean; slot: string }) => {
      const url = producerUrl(opts.database);
      if (opts.mode !== 'poll' && opts.mode !== 'log') throw new CliError(`--mode must be poll or log (got ${JSON.stringify(opts.mode)})`, EXIT.USAGE, 'USAGE');
      const intervalMs = Number(opts.interval);
      if (!Number.isInteger(intervalMs) || intervalMs < 1 || intervalMs > 3_600_000) throw new CliError('--interval must be 1 to 3600000 ms', EXIT.USAGE, 'USAGE');
      const { runRelay } = await import('../../messaging/run-relay.js');
      const { client, config, close } = await openClient();
      try {
        const relay = await runRelay({ url, client, taskQueue: config.taskQueue, mode: opts.mode, intervalMs, notify: opts.notify, slot: opts.slot, log: say });
        say(`relay (${opts.mode}) started: requests in transfer_outbox.transfer_requests → task queue ${config.taskQueue}. Ctrl-C stops.`);
        await interrupted();
        await relay.stop();
        emit(globals(), { handled: relay.handled() }, () => `relay stopped after handing over ${relay.handled()} request(s)`);
      } finally {
        await close();
      }
    });
}
