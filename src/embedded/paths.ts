import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where the project keeps things outside git. Caches (built Temporal binaries, Maven jars) can be
 * deleted at any time and are rebuilt; data (the embedded PostgreSQL cluster) holds the ledger.
 * As root the data lives under /var/lib: PostgreSQL runs as an unprivileged user that must reach it,
 * and root's home is not traversable by other users.
 */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function cacheDir(): string {
  if (process.env.TRANSFER_CACHE_DIR) return process.env.TRANSFER_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'durable-transfer');
}

export function dataDir(): string {
  if (process.env.TRANSFER_DATA_DIR) return process.env.TRANSFER_DATA_DIR;
  if (isRoot()) return '/var/lib/durable-transfer';
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'durable-transfer');
}
