import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ephemeralPort, isPortFree } from '../../src/embedded/ports.js';
import { waitFor } from '../support/control.js';
import { startCli } from '../support/cli.js';
import { createTestLedger } from '../support/ledger.js';
import { processesUsing } from '../support/processes.js';

/**
 * The README's main command as a user runs it: `transfer up`, in its own data directory and on
 * ports of its own, then stopped; nothing may be left running or listening.
 */
let dataDir: string;
const BIN = new URL('../../bin/transfer.js', import.meta.url).pathname;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'transfer-up-'));
  await chmod(dataDir, 0o755);
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

const start = (args: string[], env: Record<string, string>) => startCli(args, { ...process.env, ...env });

/** One CLI command to its end. */
const runCli = (args: string[], env: NodeJS.ProcessEnv) => startCli(args, env).done;

async function ports(): Promise<{ port: number; ui: number; metrics: number; api: number }> {
  return { port: await ephemeralPort(), ui: await ephemeralPort(), metrics: await ephemeralPort(), api: await ephemeralPort() };
}

describe('transfer up (the embedded stack)', () => {
  it('runs the demo with its three endings and a request through the message table, then shuts down cleanly with --exit', async () => {
    const p = await ports();
    const run = start(['up', '--demo', '--exit', '--port', `${p.port}`, '--ui-port', `${p.ui}`, '--metrics-port', `${p.metrics}`], { TRANSFER_DATA_DIR: dataDir, TEMPORAL_OFFLINE: '1' });
    const { code, stdout, stderr } = await run.done;
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/wallet → savings 125\.00 USD \(cross-shard\)\n\s+COMPLETED/);
    expect(stdout).toMatch(/\n\s+FAILED \(INSUFFICIENT_FUNDS\)/);
    expect(stdout).toMatch(/\n\s+COMPENSATED \(ACCOUNT_FROZEN\).*void-debit:ok\(voided\)/);
    expect(stdout).toContain(`http://127.0.0.1:${p.ui}/namespaces/default/workflows/demo-`);
    // The wallet service's order and payout request, committed together, relayed, and answered in its row.
    expect(stdout).toMatch(/wallet service: order \+ payout request in one local transaction → relay → 7\.50 USD\n\s+COMPLETED; the wallet service's row now says: completed/);
    expect(stdout).toMatch(/Balances after:\n\s+demo-wallet\s+shard 0\s+posted\s+367\.50 USD/);
    expect(stdout).toMatch(/demo-savings\s+shard 1\s+posted\s+132\.50 USD/);
    expect(stdout).toContain('Ledger verify: ok');
    // Outbound: the receiver is stopped while two more transfers complete, comes back and catches up.
    expect(stdout).toMatch(/receiver stopped; more transfers complete while it is down/);
    expect(stdout).toMatch(/caught up: 2 of 2 credit\(s\) applied, none lost, none twice/);
    expect(stderr).toContain(`Web UI        http://127.0.0.1:${p.ui}`);
    expect(stderr).toContain('Relay         poll mode: transfer requests from database wallet_service');
    expect(stderr).toContain('stopped: PostgreSQL, Temporal dev server and worker are down');
    expect(await processesUsing(dataDir)).toEqual([]);
    for (const port of [p.port, p.ui, p.metrics]) expect(await isPortFree(port), `port ${port}`).toBe(true);
    expect(existsSync(join(dataDir, 'embedded', 'stack.json'))).toBe(false);
    expect(existsSync(join(dataDir, 'embedded', 'postgres', 'pgdata', 'PG_VERSION'))).toBe(true); // data is kept
  });

  it('serves a second terminal with no configuration, and stops on Ctrl-C', async () => {
    const p = await ports();
    const up = start(['up', '--port', `${p.port}`, '--ui-port', `${p.ui}`, '--metrics-port', `${p.metrics}`, '--api-port', `${p.api}`], { TRANSFER_DATA_DIR: dataDir, TEMPORAL_OFFLINE: '1' });
    try {
      await waitFor(() => up.output().includes('Running.'), 90_000);
      const env = { TRANSFER_DATA_DIR: dataDir, LEDGER_SHARD_URLS: '', TEMPORAL_ADDRESS: '' };
      const cleanEnv = Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([k, v]) => v !== '' || !(k in env)));
      const list = spawn(process.execPath, [BIN, '--json', 'account', 'list'], { env: cleanEnv as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      list.stdout.on('data', (d) => (out += d));
      const code = await new Promise<number | null>((resolve) => list.once('exit', resolve));
      expect(code).toBe(0);
      const ids = (JSON.parse(out) as { items: { id: string }[] }).items.map((a) => a.id);
      expect(ids).toEqual(expect.arrayContaining(['demo-wallet', 'demo-savings', 'demo-frozen'])); // from the first test's demo
      const metrics = await fetch(`http://127.0.0.1:${p.metrics}/metrics`).then((r) => r.text());
      expect(metrics).toContain('transfer_step_duration_seconds');
      const sdkPort = /http:\/\/127\.0\.0\.1:(\d+)\/metrics \(Temporal SDK\)/.exec(up.output())?.[1];
      expect(sdkPort, 'the Temporal SDK metrics endpoint is announced').toBeDefined();
      const sdkMetrics = await fetch(`http://127.0.0.1:${sdkPort}/metrics`).then((r) => r.text());
      expect(sdkMetrics).toMatch(/^temporal_\w+/m);
      // The HTTP API, announced in the ready block: the demo's accounts and a transfer through it.
      expect(up.output()).toContain(`HTTP API      http://127.0.0.1:${p.api}/v1`);
      const base = `http://127.0.0.1:${p.api}`;
      const wallet = (await fetch(`${base}/v1/accounts/demo-wallet`).then((r) => r.json())) as { currency: string };
      expect(wallet.currency).toBe('USD');
      const sentId = `up-api-${Date.now()}`;
      const sent = await fetch(`${base}/v1/transfers?wait=20s`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': sentId },
        body: JSON.stringify({ from: 'demo-wallet', to: 'demo-savings', amount: '1', currency: 'USD' }),
      });
      expect(sent.status).toBe(201);
      expect(((await sent.json()) as { status: string }).status).toBe('COMPLETED');
      // `status` from a second terminal asks the stack's HTTP API (stack.json names it) and prints
      // exactly what it prints when it asks Temporal itself: human and --json, with the exit code,
      // for a completed transfer, the demo's refused and compensated ones, and an unknown id.
      const listed = async (status: string) => ((await fetch(`${base}/v1/transfers?status=${status}&limit=1`).then((r) => r.json())) as { items: { id: string }[] }).items[0]?.id;
      const statusIds = [sentId, await listed('FAILED'), await listed('COMPENSATED'), 'up-no-such-transfer'];
      expect(statusIds.every(Boolean), JSON.stringify(statusIds)).toBe(true);
      const viaTemporal = { ...cleanEnv, TEMPORAL_ADDRESS: `127.0.0.1:${p.port}` } as NodeJS.ProcessEnv;
      for (const id of statusIds as string[]) {
        for (const json of [[], ['--json']]) {
          const [fromApi, fromTemporal] = await Promise.all([runCli([...json, '--verbose', 'status', id], cleanEnv as NodeJS.ProcessEnv), runCli([...json, '--verbose', 'status', id], viaTemporal)]);
          expect(fromApi.stderr, id).toContain(`status: answered by the HTTP API at http://127.0.0.1:${p.api}`);
          if (id === 'up-no-such-transfer') expect(fromApi.stderr).not.toContain('asking Temporal');
          expect(fromTemporal.stderr, id).toContain(`status: asking Temporal at 127.0.0.1:${p.port}`);
          expect({ code: fromApi.code, stdout: fromApi.stdout }, id).toEqual({ code: fromTemporal.code, stdout: fromTemporal.stdout });
          expect(fromApi.code, id).toBe(id === sentId ? 0 : id === 'up-no-such-transfer' ? 2 : 1);
        }
      }
      // `transfer env` makes the Temporal CLI recipes work as written: the built `temporal` on PATH, this stack's address.
      const recipe = spawn('sh', ['-c', `eval "$(${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} env)" && echo "address=$TEMPORAL_ADDRESS" && temporal --version && temporal workflow list --limit 1 --output json`],
        { env: cleanEnv as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      let shellOut = '';
      recipe.stdout.on('data', (d) => (shellOut += d));
      recipe.stderr.on('data', (d) => (shellOut += d));
      const shellCode = await new Promise<number | null>((resolve) => recipe.once('exit', resolve));
      expect(shellCode, shellOut).toBe(0);
      expect(shellOut).toContain(`address=127.0.0.1:${p.port}`);
      expect(shellOut).toMatch(/temporal version 1\.5\.1 /);
      expect(shellOut).toContain('"workflowId"');
    } finally {
      up.child.kill('SIGINT');
    }
    const { code, stderr } = await up.done;
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('SIGINT: shutting down');
    expect(await processesUsing(dataDir)).toEqual([]);
    for (const port of [p.port, p.ui, p.metrics, p.api]) expect(await isPortFree(port), `port ${port}`).toBe(true);
  });

  it('uses external PostgreSQL shards when LEDGER_SHARD_URLS is set', async () => {
    const external = await createTestLedger();
    const dir = await mkdtemp(join(tmpdir(), 'transfer-up-ext-'));
    try {
      const p = await ports();
      const run = start(['--json', 'up', '--demo', '--exit', '--port', `${p.port}`, '--ui-port', `${p.ui}`, '--metrics-port', '0'], {
        TRANSFER_DATA_DIR: dir, TEMPORAL_OFFLINE: '1', LEDGER_SHARD_URLS: external.urls.join(','),
        // 500.00 USD and more wait for approval: the demo's large case says so and approves it itself.
        TRANSFER_APPROVAL_THRESHOLD: '50000',
      });
      const { code, stdout, stderr } = await run.done;
      expect(code, stderr).toBe(0);
      expect(stderr).toContain('PostgreSQL    external (2 shards)');
      expect(stderr).toContain('Ledger verify: ok');
      expect(stderr).toMatch(/1,000,000\.00 USD \(insufficient funds\)\n\s+AWAITING_APPROVAL .*`npx transfer approve demo-\S+ --by <name>`/);
      expect(stderr).toContain('approved by demo-approver');
      // --json: the demo's report goes to stderr and stdout is exactly one JSON object.
      const report = JSON.parse(stdout) as { items: { status: string; reason?: string }[] };
      expect(report.items.map((i) => [i.status, i.reason])).toEqual([['COMPLETED', undefined], ['FAILED', 'INSUFFICIENT_FUNDS'], ['COMPENSATED', 'ACCOUNT_FROZEN']]);
      expect(existsSync(join(dir, 'embedded', 'postgres'))).toBe(false);
      expect((await external.ledger.getAccount('demo-savings')).posted).toBe('12500');
    } finally {
      await external.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
