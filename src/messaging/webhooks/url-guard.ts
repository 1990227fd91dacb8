import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';

/**
 * Webhook URLs are typed by operators but fetched by the dispatcher from inside the network: a URL
 * pointing at a cloud metadata service (169.254.169.254) or another link-local address would let a
 * subscriber read credentials. Such URLs are refused when added, and again at connect time (a
 * hostname can start resolving there later: DNS rebinding).
 */
export class WebhookUrlError extends Error {}

export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return address.startsWith('169.254.');
  if (family === 6) {
    const a = address.toLowerCase();
    // IPv4-mapped IPv6 (::ffff:169.254.x.y) reaches the same host.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
    if (mapped) return isForbiddenAddress(mapped[1]!);
    // The same, as the URL parser normalises it: ::ffff:a9fe:a9fe.
    const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(a);
    if (hex) return (parseInt(hex[1]!, 16) >> 8) === 169 && (parseInt(hex[1]!, 16) & 0xff) === 254;
    // fe80::/10: first 10 bits 1111111010, i.e. fe8x, fe9x, feax, febx.
    return /^fe[89ab][0-9a-f]:/.test(a);
  }
  return false;
}

/** Syntax and address checks; resolves the hostname so a name for a metadata address is refused too. */
export async function checkWebhookUrl(text: string, resolve: (host: string) => Promise<string[]> = resolveAll): Promise<URL> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new WebhookUrlError(`${JSON.stringify(text)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new WebhookUrlError(`webhook URLs must be http or https (got ${url.protocol})`);
  if (url.username || url.password) throw new WebhookUrlError('webhook URLs must not carry credentials; receivers authenticate deliveries by their signature');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [host] : await resolve(host).catch((error: Error) => {
    throw new WebhookUrlError(`cannot resolve ${host}: ${error.message}`);
  });
  const bad = addresses.find(isForbiddenAddress);
  if (bad) throw new WebhookUrlError(`${host} is a link-local / metadata address (${bad}); refused`);
  return url;
}

async function resolveAll(host: string): Promise<string[]> {
  const found = await dns.lookup(host, { all: true });
  return found.map((a) => a.address);
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for http.Agent that refuses forbidden addresses at connect time. */
export function guardedLookup(hostname: string, options: object, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const list = addresses;
    const bad = list.find((a) => isForbiddenAddress(a.address));
    if (bad) return callback(Object.assign(new Error(`${hostname} resolves to a link-local address (${bad.address}); refused`), { code: 'EFORBIDDEN' }), []);
    if ((options as { all?: boolean }).all) return callback(null, list);
    return callback(null, list[0]!.address, list[0]!.family);
  });
}
