import http from 'node:http';
import https from 'node:https';
import { Webhook } from 'standardwebhooks';
import { parseRetryAfter } from './config.js';
import { guardedLookup, isForbiddenAddress } from './url-guard.js';

export interface SendResult {
  /** A 2xx arrived within the timeout. */
  ok: boolean;
  status?: number;
  error?: string;
  latencyMs: number;
  retryAfterMs?: number;
  /** 410 Gone: the receiver asks us to stop. */
  gone: boolean;
}

// Keep-alive: at hundreds of deliveries per second a new TCP (and TLS) handshake each would dominate.
const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 64, lookup: guardedLookup }),
  https: new https.Agent({ keepAlive: true, maxSockets: 64, lookup: guardedLookup }),
};

const signers = new Map<string, Webhook>();

function signer(secret: string): Webhook {
  let w = signers.get(secret);
  if (!w) {
    if (signers.size > 10_000) signers.clear();
    w = new Webhook(secret);
    signers.set(secret, w);
  }
  return w;
}

/**
 * Standard Webhooks signature: one `v1,<base64>` per valid secret, space-separated, so a receiver
 * holding either the new or the previous secret verifies during a rotation.
 */
export function signatureHeader(secrets: readonly string[], id: string, at: Date, body: string): string {
  return secrets.map((s) => signer(s).sign(id, at, body)).join(' ');
}

/**
 * One attempt. Redirects are not followed (a 3xx is a failure: the subscriber must register the
 * final URL, and following would bypass the address check). The outcome is decided when the
 * status line arrives; the response body is drained and ignored.
 */
export function sendWebhook(input: { url: string; id: string; body: string; secrets: readonly string[]; timeoutMs: number }): Promise<SendResult> {
  // Latency is the receiver's: from the moment a socket is ours, not while the request waits for one.
  let started = performance.now();
  const at = new Date();
  const headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(input.body)),
    'user-agent': 'durable-transfer-webhooks/1',
    'webhook-id': input.id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signatureHeader(input.secrets, input.id, at, input.body),
  };
  return new Promise((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (result: Omit<SendResult, 'latencyMs' | 'gone'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...result, gone: result.status === 410, latencyMs: Math.round(performance.now() - started) });
    };
    const url = new URL(input.url);
    // An address literal never goes through the agent's lookup: check it here (a row edited in the database, say).
    if (isForbiddenAddress(url.hostname.replace(/^\[|\]$/g, ''))) return finish({ ok: false, error: `refused: ${url.hostname} is a link-local / metadata address` });
    const client = url.protocol === 'https:' ? https : http;
    const agent = url.protocol === 'https:' ? agents.https : agents.http;
    const req = client.request(url, { method: 'POST', headers, agent }, (res) => {
      const status = res.statusCode ?? 0;
      const ok = status >= 200 && status < 300;
      const retryAfterMs = ok ? undefined : parseRetryAfter(res.headers['retry-after']);
      finish({ ok, status, ...(ok ? {} : { error: status >= 300 && status < 400 ? `redirect ${status} not followed` : `HTTP ${status}` }), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
      res.on('error', () => undefined);
      res.resume();
    });
    // The deadline covers connecting, sending and the status line: a socket that never answers fails here.
    timer = setTimeout(() => {
      finish({ ok: false, error: `no response within ${input.timeoutMs} ms` });
      req.destroy();
    }, input.timeoutMs);
    // After a 2xx, a reset while we were still writing (a receiver that answered without reading) changes nothing.
    req.on('error', (error: NodeJS.ErrnoException) => finish({ ok: false, error: error.code ? `${error.code}: ${error.message}` : error.message }));
    req.once('socket', () => (started = performance.now()));
    req.end(input.body);
  });
}
