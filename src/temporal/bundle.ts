import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cacheDir } from '../embedded/paths.js';
import { fromRoot } from '../paths.js';

/**
 * The workflow bundle a worker loads, built once per version of the code and kept on disk.
 *
 * The SDK's default bundles workflows/ with webpack inside the worker at every start: a few seconds
 * of CPU and some 150 MiB of webpack's heap the worker keeps as RSS for its whole life. Here a
 * short-lived child process builds it into the cache, keyed by a hash of every source file the
 * bundle can reach (workflows/, activities/, src/) and the SDK's version, so a change to any of
 * them builds a new one and a stale bundle is never loaded.
 */
// The tree this module runs from: the sources (through tsx) or dist/ (compiled, .js).
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXT = import.meta.url.endsWith('.js') ? '.js' : '.ts';
const SOURCES = ['workflows', 'activities', 'src'];
const exec = promisify(execFile);

export async function cachedWorkflowBundle(progress?: (line: string) => void): Promise<{ codePath: string }> {
  const codePath = join(cacheDir(), 'workflow-bundles', `${await sourceHash()}.js`);
  if (existsSync(codePath)) return { codePath };
  progress?.('bundling workflows (once per code version)…');
  await mkdir(dirname(codePath), { recursive: true });
  const partial = `${codePath}.${process.pid}.tmp`;
  // The child writes the bundle; this process never loads webpack.
  const child = fileURLToPath(new URL(`./bundle-child${EXT}`, import.meta.url));
  await exec(process.execPath, [...(EXT === '.ts' ? ['--import', 'tsx'] : []), child, partial], { cwd: ROOT, maxBuffer: 4 * 1024 * 1024 });
  await rename(partial, codePath); // atomic: a concurrent worker sees the whole file or none
  return { codePath };
}

async function sourceHash(): Promise<string> {
  const hash = createHash('sha256');
  const sdk = JSON.parse(await readFile(fromRoot('node_modules/@temporalio/workflow/package.json'), 'utf8')) as { version: string };
  hash.update(`sdk ${sdk.version} ${EXT}\n`);
  for (const dir of SOURCES) {
    for (const file of await tsFiles(join(ROOT, dir))) {
      hash.update(`${file.slice(ROOT.length)}\n`);
      hash.update(await readFile(file));
    }
  }
  return hash.digest('hex').slice(0, 24);
}

async function tsFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const files: string[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await tsFiles(path)));
    else if (entry.name.endsWith(EXT) && !entry.name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

/** For the child: bundle workflows/ into `target`. */
export async function writeBundle(target: string, workflowsPath: string): Promise<void> {
  const { bundleWorkflowCode, DefaultLogger } = await import('@temporalio/worker');
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
  await writeFile(target, code);
}
