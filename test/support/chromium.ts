import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/**
 * Headless Chromium for the Web UI test: Debian's package, never a Playwright browser download.
 * Lookup order: CHROMIUM_PATH, /usr/bin/chromium, /usr/bin/chromium-browser; failing those, one
 * `apt-get install -y chromium` when running as root (CI), with `apt-get update` first if the
 * package lists do not know it.
 */

export const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
export const INSTALL_HINT =
  'Chromium is needed for the Web UI test: install Debian\'s package with `sudo apt-get update && sudo apt-get install -y chromium`, or set CHROMIUM_PATH to a Chromium/Chrome executable';
const INSTALL_TIMEOUT_MS = 10 * 60_000;

const say = (line: string) => process.stderr.write(`[chromium] ${line}\n`);

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first Chromium on this machine, without installing anything. */
export function findChromium(): string | undefined {
  const explicit = process.env.CHROMIUM_PATH;
  if (explicit) {
    if (executable(explicit)) return explicit;
    say(`CHROMIUM_PATH=${explicit} is not an executable file; looking elsewhere`);
  }
  return CHROMIUM_CANDIDATES.find(executable);
}

interface CommandResult {
  code: number | null;
  output: string;
  timedOut: boolean;
}

/** Runs a command with a deadline, passing a progress line to stderr every few seconds. */
function runWithProgress(command: string, args: string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    let output = '';
    let last = '';
    let timedOut = false;
    const child = spawn(command, args, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-20_000);
      const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
      if (lines.length) last = lines.at(-1)!;
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const ticker = setInterval(() => say(`${command} ${args.join(' ')}: ${Math.round((Date.now() - started) / 1000)} s … ${last.slice(0, 160)}`), 5_000);
    const killer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
    }, timeoutMs);
    const done = (code: number | null) => {
      clearInterval(ticker);
      clearTimeout(killer);
      resolve({ code, output, timedOut });
    };
    child.on('error', (error) => {
      output += String(error);
      done(null);
    });
    child.on('close', done);
  });
}

const MISSING_PACKAGE = /Unable to locate package|has no installation candidate|404\s+Not Found|Failed to fetch/i;

let installing: Promise<string | undefined> | undefined;

/** One attempt per process to install Debian's chromium (root only); the browser path, or undefined. */
export function installChromium(): Promise<string | undefined> {
  installing ??= (async () => {
    if (process.getuid?.() !== 0) {
      say('not installing Chromium: not running as root');
      return undefined;
    }
    if (!executable('/usr/bin/apt-get')) {
      say('not installing Chromium: no apt-get on this machine');
      return undefined;
    }
    const deadline = Date.now() + INSTALL_TIMEOUT_MS;
    say('no Chromium found; installing Debian\'s package: apt-get install -y chromium');
    let result = await runWithProgress('apt-get', ['install', '-y', 'chromium'], deadline - Date.now());
    // Missing from the lists, or the lists are stale (404 on a package file): refresh, then again.
    if (result.code !== 0 && !result.timedOut) {
      say(MISSING_PACKAGE.test(result.output) ? 'the package lists do not have it: apt-get update, then install again' : 'install failed: apt-get update, then install again');
      const update = await runWithProgress('apt-get', ['update'], deadline - Date.now());
      if (update.code === 0) result = await runWithProgress('apt-get', ['install', '-y', 'chromium'], deadline - Date.now());
      else result = update;
    }
    if (result.code !== 0) {
      say(`installing Chromium failed${result.timedOut ? ` (gave up after ${INSTALL_TIMEOUT_MS / 60_000} min)` : ''}:\n${result.output.split('\n').slice(-15).join('\n')}`);
      return undefined;
    }
    const found = findChromium();
    say(found ? `Chromium installed: ${found}` : 'apt-get succeeded but no chromium executable appeared');
    return found;
  })();
  return installing;
}

/** Finds Chromium, installing it when possible; undefined with a reason when it cannot be had. */
export async function ensureChromium(): Promise<{ path: string } | { missing: string }> {
  const path = findChromium() ?? (await installChromium());
  return path ? { path } : { missing: `no Chromium executable (looked at ${[process.env.CHROMIUM_PATH, ...CHROMIUM_CANDIDATES].filter(Boolean).join(', ')}). ${INSTALL_HINT}` };
}

/** Flags for a closed network: nothing phones home, nothing updates, no GPU, no sandbox (root in CI). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

export interface HeadlessChromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A headless browser with a fresh profile directory, removed again on close. */
export async function launchChromium(executablePath: string, options: { viewport?: { width: number; height: number } } = {}): Promise<HeadlessChromium> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'chromium-profile-'));
  try {
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: options.viewport ?? { width: 1440, height: 1000 },
      timeout: 30_000,
    });
    return {
      context,
      async close() {
        await context.close().catch(() => undefined);
        await rm(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
}
