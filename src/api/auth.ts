import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

/**
 * Bearer API keys. Keys come from TRANSFER_API_KEYS (comma-separated) and/or TRANSFER_API_KEYS_FILE
 * (one per line, `#` comments). A presented token is hashed and compared with the SHA-256 of every
 * configured key by `crypto.timingSafeEqual` (equal lengths, so no early exit), without stopping at
 * the first match: neither the key's content nor which key matched shows in the time taken.
 */
export const MIN_KEY_LENGTH = 16;
const KEY_TEXT = /^[\x21-\x2b\x2d-\x7e]+$/; // printable ASCII without space or comma

export function apiKeysFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const keys = (env.TRANSFER_API_KEYS ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  if (env.TRANSFER_API_KEYS_FILE) {
    const lines = readFileSync(env.TRANSFER_API_KEYS_FILE, 'utf8').split('\n').map((l) => l.trim());
    keys.push(...lines.filter((l) => l && !l.startsWith('#')));
  }
  for (const key of keys) {
    if (key.length < MIN_KEY_LENGTH || !KEY_TEXT.test(key)) {
      throw new Error(`an API key in TRANSFER_API_KEYS(_FILE) is not usable: keys are at least ${MIN_KEY_LENGTH} printable ASCII characters without spaces or commas (e.g. \`openssl rand -hex 32\`)`);
    }
  }
  return keys;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * A checker for `Authorization` headers. `compare` is `crypto.timingSafeEqual`; tests pass a
 * counting wrapper to see that every key is compared on every call, whatever was presented.
 */
export function bearerChecker(keys: readonly string[], compare: (a: Buffer, b: Buffer) => boolean = timingSafeEqual): (authorization: string | undefined) => boolean {
  const digests = keys.map(sha256);
  return (authorization) => {
    const match = /^Bearer ([\x21-\x7e]+)$/.exec(authorization ?? '');
    // Hash something even when there is nothing to hash: the same work on every path.
    const presented = sha256(match?.[1] ?? '');
    let ok = false;
    for (const digest of digests) ok = compare(digest, presented) || ok; // compare first: never short-circuited
    return ok && match !== null;
  };
}

/** 127.0.0.0/8, ::1 and localhost: the only addresses a server without API keys may listen on. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || /^::ffff:127\./i.test(bare);
  return false;
}

export function assertBindable(host: string, keys: readonly string[]): void {
  if (keys.length === 0 && !isLoopback(host)) {
    throw new Error(`refusing to listen on ${host} without API keys: set TRANSFER_API_KEYS (or TRANSFER_API_KEYS_FILE), or listen on 127.0.0.1`);
  }
}
