import type { Command } from 'commander';
import { emit, EXIT, type GlobalOptions } from '../output.js';

/**
 * `transfer doctor`: one line per check, each `ok` or what to do. Exit 0 when every check is ok,
 * 3 (an environment problem) otherwise. Read-only apart from what any command does on first use of
 * a shard (claiming its identity).
 */
export interface Check {
  check: string;
  ok: boolean;
  detail: string;
  /** What to run or change, when not ok. */
  fix?: string;
}

const START = 'start the stack: `npm start` or `npx transfer up` (or point TEMPORAL_ADDRESS / LEDGER_SHARD_URLS at yours)';
const TIMEOUT_MS = 5_000;

/** "postgres://u:p@host:5432/db" → "host:5432/db" (no credentials in output). */
function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

function oneLine(error: unknown): string {
  const e = error as { details?: unknown; message?: unknown };
  return String(typeof e?.details === 'string' && e.details ? e.details : e?.message ?? error).replace(/\s*\n\s*/g, ' ').trim();
}

async function temporalChecks(checks: Check[]): Promise<boolean> {
  const { temporalTarget, connectionOptions } = await import('../context.js');
  const config = await temporalTarget();
  const sdk = await import('@temporalio/client');
  let connection: import('@temporalio/client').Connection;
  try {
    connection = await sdk.Connection.connect({ ...(await connectionOptions(config)), connectTimeout: TIMEOUT_MS });
  } catch (error) {
    checks.push({ check: 'temporal', ok: false, detail: `Temporal at ${config.address} is unreachable (${oneLine(error)})`, fix: START });
    return false;
  }
  try {
    const deadline = () => Date.now() + TIMEOUT_MS;
    checks.push({ check: 'temporal', ok: true, detail: `Temporal reachable at ${config.address}` });
    const namespace = config.namespace;
    const described = await connection.withDeadline(deadline(), () => connection.workflowService.describeNamespace({ namespace })).catch((error: unknown) => error as Error);
    if (described instanceof Error) {
      const missing = (described as { code?: number }).code === 5 || /not found/i.test(oneLine(described));
      checks.push({
        check: 'namespace', ok: false, detail: missing ? `namespace ${namespace} does not exist` : `namespace ${namespace} could not be described (${oneLine(described)})`,
        fix: missing ? `\`temporal operator namespace create --namespace ${namespace}\` (or set TEMPORAL_NAMESPACE)` : 'check TEMPORAL_NAMESPACE and the credentials',
      });
      return true;
    }
    checks.push({ check: 'namespace', ok: true, detail: `namespace ${namespace} exists` });

    const { TRANSFER_SEARCH_ATTRIBUTES } = await import('../../domain/search-attributes.js');
    const listed = await connection.withDeadline(deadline(), () => connection.operatorService.listSearchAttributes({ namespace })).catch((error: unknown) => error as Error);
    if (listed instanceof Error) {
      checks.push({ check: 'search-attributes', ok: false, detail: `search attributes of ${namespace} could not be listed (${oneLine(listed)})`, fix: 'check the credentials (the operator service must be allowed)' });
    } else {
      const have = new Set(Object.keys(listed.customAttributes ?? {}));
      const missing = TRANSFER_SEARCH_ATTRIBUTES.filter((k) => !have.has(k.name));
      const typeName = (t: string) => ({ KEYWORD: 'Keyword', INT: 'Int', TEXT: 'Text', BOOL: 'Bool', DOUBLE: 'Double', DATETIME: 'Datetime', KEYWORD_LIST: 'KeywordList' } as Record<string, string>)[t] ?? t;
      checks.push(missing.length === 0
        ? { check: 'search-attributes', ok: true, detail: `search attributes ${TRANSFER_SEARCH_ATTRIBUTES.map((k) => k.name).join(', ')} defined in ${namespace}` }
        : {
            check: 'search-attributes', ok: false, detail: `namespace ${namespace} lacks the search attributes ${missing.map((k) => k.name).join(', ')}`,
            fix: `\`temporal operator search-attribute create --namespace ${namespace} ${missing.map((k) => `--name ${k.name} --type ${typeName(k.type)}`).join(' ')}\``,
          });
    }

    const queue = await connection.withDeadline(deadline(), () => connection.workflowService.describeTaskQueue({
      namespace, taskQueue: { name: config.taskQueue, kind: 1 /* TASK_QUEUE_KIND_NORMAL */ },
      taskQueueType: 1 /* TASK_QUEUE_TYPE_WORKFLOW */,
    })).catch((error: unknown) => error as Error);
    if (queue instanceof Error) {
      checks.push({ check: 'worker', ok: false, detail: `task queue ${config.taskQueue} could not be described (${oneLine(queue)})`, fix: 'check TEMPORAL_TASK_QUEUE and the credentials' });
    } else {
      const pollers = queue.pollers ?? [];
      checks.push(pollers.length > 0
        ? { check: 'worker', ok: true, detail: `${pollers.length} worker poller(s) on task queue ${config.taskQueue} (${[...new Set(pollers.map((p) => p.identity ?? '?'))].slice(0, 3).join(', ')})` }
        : { check: 'worker', ok: false, detail: `no worker polls task queue ${config.taskQueue} in ${namespace}`, fix: 'run `npx transfer worker` with the same TEMPORAL_* and LEDGER_SHARD_URLS (or `npx transfer up`)' });
    }
    return true;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

async function ledgerChecks(checks: Check[]): Promise<boolean> {
  const [{ ledgerConfig }, { readStackInfo }, { parseSlotMap }] = await Promise.all([import('../../config.js'), import('../../embedded/stack-file.js'), import('../../domain/slots.js')]);
  const fromEnv = ledgerConfig();
  const stack = fromEnv ? undefined : await readStackInfo();
  if (!fromEnv && !stack) {
    checks.push({ check: 'ledger', ok: false, detail: 'no ledger configured (no LEDGER_SHARD_URLS, no running embedded stack)', fix: START });
    return false;
  }
  const shardUrls = fromEnv?.shardUrls ?? stack!.shardUrls;
  const slotMap = fromEnv?.slotMap ?? parseSlotMap(stack!.slotMap, stack!.shardUrls.length);
  const [{ Ledger }, { loadMigrations }] = await Promise.all([import('../../ledger/ledger.js'), import('../../db/migrate.js')]);
  const expected = await loadMigrations();
  const ledger = Ledger.connect({ shardUrls, slotMap, pool: { max: 2, acquireTimeoutMs: TIMEOUT_MS, statementTimeoutMs: TIMEOUT_MS } });
  let reachable = 0;
  let migrated = 0;
  try {
    for (const shard of ledger.shards) {
      const at = where(shardUrls[shard.shard] ?? '');
      const rows = await shard.pool.query<{ version: number }>('SELECT version FROM schema_migrations').then((r) => r.rows, (error: unknown) => error as Error);
      if (rows instanceof Error) {
        const missingTable = (rows as { code?: string }).code === '42P01';
        if (!missingTable) {
          checks.push({ check: `shard ${shard.shard}`, ok: false, detail: `ledger shard ${shard.shard} (${at}) unreachable (${oneLine(rows)})`, fix: fromEnv ? 'check LEDGER_SHARD_URLS and that PostgreSQL runs' : START });
          continue;
        }
      }
      reachable += 1;
      const done = new Set(rows instanceof Error ? [] : rows.map((r) => r.version));
      const pending = expected.filter((m) => !done.has(m.version)).map((m) => m.name);
      if (pending.length) {
        checks.push({ check: `shard ${shard.shard}`, ok: false, detail: `ledger shard ${shard.shard} (${at}) lacks migrations ${pending.join(', ')}`, fix: 'start a worker (`npx transfer worker` or `npx transfer up`): it applies them' });
        continue;
      }
      migrated += 1;
      checks.push({ check: `shard ${shard.shard}`, ok: true, detail: `ledger shard ${shard.shard} (${at}) reachable, ${expected.length} migrations applied` });
    }
    if (migrated === ledger.shards.length) {
      const identity = await ledger.checkIdentity().then(() => undefined, (error: unknown) => error as Error);
      checks.push(identity
        ? { check: 'shard-identity', ok: false, detail: oneLine(identity), fix: 'list LEDGER_SHARD_URLS in shard order with the slot map they were set up with' }
        : { check: 'shard-identity', ok: true, detail: `every shard is the database it was given as (${ledger.shards.length} shard(s), slot map version ${ledger.mapVersion})` });
    }
  } finally {
    await ledger.close().catch(() => undefined);
  }
  return reachable > 0;
}

/** The webhook dispatcher's database and the relay's producer database, where configured. */
async function messagingChecks(checks: Check[]): Promise<void> {
  const [{ messagingTargets }, { readStackInfo }, { createPool }] = await Promise.all([
    import('../../messaging/webhooks/targets.js'), import('../../embedded/stack-file.js'), import('../../db/transaction.js'),
  ]);
  const { messagesUrl } = await messagingTargets();
  if (messagesUrl) {
    const pool = createPool(messagesUrl, { max: 1, acquireTimeoutMs: TIMEOUT_MS, statementTimeoutMs: TIMEOUT_MS });
    try {
      const counts = await pool.query<{ status: string; n: string; failing: string }>(
        "SELECT status, count(*)::text AS n, count(*) FILTER (WHERE attempts > 0)::text AS failing FROM webhook_deliveries GROUP BY status",
      ).then((r) => r.rows, (error: unknown) => error as Error);
      if (counts instanceof Error) {
        const missing = (counts as { code?: string }).code === '42P01';
        checks.push(missing
          ? { check: 'webhooks', ok: true, detail: `messages database ${where(messagesUrl)} reachable (no webhook tables yet: no subscribers)` }
          : { check: 'webhooks', ok: false, detail: `messages database ${where(messagesUrl)} unreachable (${oneLine(counts)})`, fix: 'check MESSAGES_DATABASE_URL and that PostgreSQL runs' });
      } else {
        const dead = Number(counts.find((r) => r.status === 'dead')?.n ?? 0);
        const retrying = Number(counts.find((r) => r.status === 'pending')?.failing ?? 0);
        checks.push(dead === 0 && retrying === 0
          ? { check: 'webhooks', ok: true, detail: `messages database ${where(messagesUrl)} reachable; no webhook delivery failing or dead` }
          : {
              check: 'webhooks', ok: false, detail: `webhook deliveries: ${dead} dead, ${retrying} failing and retrying`,
              fix: 'see `npx transfer webhook deliveries --status dead` (and `--status pending`); fix the receiver, then `npx transfer webhook replay --dead`',
            });
      }
    } finally {
      await pool.end().catch(() => undefined);
    }
  }
  const producerUrl = process.env.MESSAGES_PRODUCER_URL || (await readStackInfo())?.producerUrl;
  if (producerUrl) {
    const { slotLag } = await import('../../messaging/relay-log.js');
    const pool = createPool(producerUrl, { max: 1, acquireTimeoutMs: TIMEOUT_MS, statementTimeoutMs: TIMEOUT_MS });
    try {
      const slot = await slotLag(pool).catch((error: unknown) => error as Error);
      const logMode = process.env.TRANSFER_RELAY_MODE === 'log';
      if (slot instanceof Error) {
        checks.push({ check: 'relay', ok: false, detail: `producer database ${where(producerUrl)} unreachable (${oneLine(slot)})`, fix: 'check MESSAGES_PRODUCER_URL and that PostgreSQL runs' });
      } else if (!slot.exists) {
        checks.push(logMode
          ? { check: 'relay', ok: false, detail: `producer database ${where(producerUrl)} reachable, but no log relay slot`, fix: 'start the relay in log mode: `npx transfer relay --mode log`' }
          : { check: 'relay', ok: true, detail: `producer database ${where(producerUrl)} reachable (poll mode: no replication slot)` });
      } else {
        const lagMb = slot.lagBytes / 1024 / 1024;
        const healthy = slot.active && lagMb < 64;
        checks.push(healthy
          ? { check: 'relay', ok: true, detail: `producer database ${where(producerUrl)} reachable; log relay slot attached, ${slot.lagBytes} bytes behind` }
          : {
              check: 'relay', ok: false, detail: `log relay slot ${slot.active ? 'attached' : 'NOT attached'}, ${slot.lagBytes} bytes behind`,
              fix: slot.active ? 'the relay falls behind: check its log and Temporal' : 'start the relay (`npx transfer relay --mode log`), or drop the slot if log mode is no longer used (it holds WAL)',
            });
      }
    } finally {
      await pool.end().catch(() => undefined);
    }
  }
}

export async function runDoctor(): Promise<{ ok: boolean; checks: Check[]; hint?: string }> {
  const checks: Check[] = [];
  const temporalUp = await temporalChecks(checks);
  const ledgerUp = await ledgerChecks(checks);
  if (temporalUp || ledgerUp) await messagingChecks(checks);
  const ok = checks.every((c) => c.ok);
  return { ok, checks, ...(!temporalUp && !ledgerUp ? { hint: `nothing answers: ${START}` } : {}) };
}

export function registerDoctorCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('doctor')
    .description('check the environment: Temporal, namespace and search attributes, a worker, ledger shards, relay and webhooks; exit 3 if anything is wrong')
    .action(async () => {
      const report = await runDoctor();
      emit(globals(), report, () => [
        ...report.checks.map((c) => (c.ok ? `ok    ${c.detail}` : `FAIL  ${c.detail}${c.fix ? `: ${c.fix}` : ''}`)),
        ...(report.hint ? [report.hint] : []),
      ].join('\n'));
      if (!report.ok) process.exitCode = EXIT.UNREACHABLE;
    });
}
