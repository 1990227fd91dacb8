import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkWebhookUrl } from '../../src/messaging/webhooks/url-guard.js';
import { sendWebhook } from '../../src/messaging/webhooks/sender.js';
import { newSecret } from '../../src/messaging/webhooks/endpoints.js';
import { CLI, cliEnv, parseJson, runCli } from '../support/cli.js';
import { createMessagingDbs, insertEvent, scriptedReceiver, waitFor, type MessagingDbs } from './support.js';

let dbs: MessagingDbs;
let dataDir: string;
let env: Record<string, string>;
beforeAll(async () => {
  dbs = await createMessagingDbs();
  // Never the machine's own embedded stack: the commands see only what the test gives them.
  dataDir = await mkdtemp(join(tmpdir(), 'webhook-cli-'));
  env = { MESSAGES_DATABASE_URL: dbs.messagesUrl, LEDGER_SHARD_URLS: dbs.shardUrls.join(','), TRANSFER_DATA_DIR: dataDir };
});
afterAll(async () => {
  await dbs?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('webhook URLs', () => {
  const resolver = (map: Record<string, string[]>) => async (host: string) => map[host] ?? ['93.184.216.34'];

  it.each([
    ['ftp://example.com/hook', /http or https/],
    ['file:///etc/passwd', /http or https/],
    ['javascript:alert(1)', /http or https/],
    ['not a url', /not a URL/],
    ['http://169.254.169.254/latest/meta-data/', /link-local/],
    ['http://[fe80::1]/hook', /link-local/],
    ['http://[febf:ffff::1]/hook', /link-local/],
    ['http://[::ffff:169.254.169.254]/hook', /link-local/],
    ['http://metadata.internal/hook', /link-local/],
    ['http://user:pw@127.0.0.1/hook', /credentials/],
  ])('refuses %s', async (url, reason) => {
    await expect(checkWebhookUrl(url, resolver({ 'metadata.internal': ['10.0.0.5', '169.254.169.254'] }))).rejects.toThrow(reason);
  });

  it.each(['http://127.0.0.1:8080/hook', 'https://example.com/hook', 'http://[fec0::1]/hook', 'http://[fe7f::1]/hook', 'http://169.253.1.1/'])('accepts %s (not link-local)', async (url) => {
    await expect(checkWebhookUrl(url, resolver({}))).resolves.toBeInstanceOf(URL);
  });

  it('the sender refuses a link-local address too (a URL that reached the database another way)', async () => {
    const result = await sendWebhook({ url: 'http://169.254.169.254/latest', id: 'x', body: '{}', secrets: [newSecret()], timeoutMs: 1000 });
    expect(result).toMatchObject({ ok: false, error: expect.stringMatching(/refused/) as unknown });
  });
});

describe('transfer webhook (CLI)', () => {
  it('refuses bad URLs with exit 2 and adds nothing', async () => {
    for (const url of ['ftp://example.com/x', 'http://169.254.169.254/latest/meta-data', 'http://[fe80::1]:8080/']) {
      const result = await runCli(['--json', 'webhook', 'add', url, '--events', '*'], env);
      expect(result.code, result.stderr).toBe(2);
    }
    expect((await dbs.messages.query('SELECT 1 FROM webhook_endpoints')).rowCount).toBe(0);
  });

  it('prints a secret once, never lists it, and never logs it while delivering', async () => {
    const r = await scriptedReceiver((_h, _req, res) => res.writeHead(500).end());
    try {
      const added = parseJson<{ endpoint: { id: string }; secret: string }>(await runCli(['--json', 'webhook', 'add', r.url, '--events', 'transfer.*'], env));
      expect(added.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
      const rotated = parseJson<{ secret: string }>(await runCli(['--json', 'webhook', 'rotate-secret', added.endpoint.id, '--grace', '3600'], env));
      expect(rotated.secret).not.toBe(added.secret);
      const listed = await runCli(['--json', 'webhook', 'list'], env);
      expect(parseJson<{ items: { rotating: boolean }[] }>(listed).items).toMatchObject([{ rotating: true, enabled: true }]);
      expect(listed.stdout).not.toContain('whsec_');

      const id = await insertEvent(dbs.shards[0]!);
      const child = spawn(process.execPath, [CLI, 'dispatch'], {
        env: cliEnv({ ...env, LOG_LEVEL: 'debug', WEBHOOK_RETRY_SCHEDULE_MS: '50,50', WEBHOOK_POLL_MS: '20', WEBHOOK_TIMEOUT_MS: '2000' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let logs = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (logs += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (logs += d));
      try {
        await waitFor('dead after three 500s', async () => (await dbs.messages.query(`SELECT 1 FROM webhook_deliveries WHERE status = 'dead'`)).rowCount === 1, 45_000);
      } finally {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
      // The failures were logged (so the log path ran) with neither secret nor any signature in them.
      expect(logs).toContain('webhook attempt failed');
      for (const secret of [added.secret, rotated.secret]) {
        expect(logs).not.toContain(secret);
        expect(logs).not.toContain(secret.slice('whsec_'.length));
      }
      expect(logs).not.toContain('whsec_');
      for (const hit of r.hits) for (const sig of hit.signature.split(' ')) expect(logs).not.toContain(sig.slice(3));
      expect(r.hits).toHaveLength(3);

      const deliveries = parseJson<{ items: { status: string; history: { httpStatus: number }[] }[] }>(await runCli(['--json', 'webhook', 'deliveries', '--event', id], env));
      expect(deliveries.items).toMatchObject([{ status: 'dead', history: [{ httpStatus: 500 }, { httpStatus: 500 }, { httpStatus: 500 }] }]);
      expect(parseJson(await runCli(['--json', 'webhook', 'replay', '--dead'], env))).toEqual({ deliveries: 1 });
      expect(parseJson(await runCli(['--json', 'webhook', 'replay', '--event', id], env))).toEqual({ events: 1, deliveries: 1 });
      const disabled = await runCli(['--json', 'webhook', 'disable', added.endpoint.id, '--reason', 'maintenance'], env);
      expect(parseJson<{ endpoint: { enabled: boolean; disabledReason: string } }>(disabled).endpoint).toMatchObject({ enabled: false, disabledReason: 'maintenance' });
    } finally {
      await r.close();
    }
  }, 120_000);
});
