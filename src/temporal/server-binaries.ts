import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cacheDir } from '../embedded/paths.js';
import { requireGo, streamCommand, type Progress } from './binaries.js';

const run = promisify(execFile);

/**
 * The production-like profile's binaries, built from the Go module proxy like the CLI is:
 * - the Temporal server (`go.temporal.io/server/cmd/server`) and its SQL schema tool
 *   (`go.temporal.io/server/cmd/tools/sql`), with the PostgreSQL schema files of the same module
 *   (`schema/postgresql/v12`), all in `<cache>/temporal-server/<version>/`;
 * - the Web UI server (`github.com/temporalio/ui-server/v2/cmd/server`): the UI's static assets are
 *   compiled into the module, so it serves offline; in `<cache>/temporal-ui-server/<version>/`.
 * Each is built into a staging directory that is renamed into place when complete: an interrupted
 * build is never mistaken for a cached one.
 */

/** The server the CLI v1.5.1 embeds; its go.mod has no `replace`, so `go install …@version` takes it. */
export const TEMPORAL_SERVER_VERSION = 'v1.29.1';
/** The Web UI server the CLI v1.5.1 embeds (known to work with server v1.29.1, and with our Go). */
export const TEMPORAL_UI_SERVER_VERSION = 'v2.42.1';
const SERVER_MODULE = 'go.temporal.io/server';
const UI_MODULE = 'github.com/temporalio/ui-server/v2';

export interface ServerBinaries {
  server: string;
  sqlTool: string;
  /** Holds `temporal/versioned` and `visibility/versioned` (PostgreSQL v12 schema). */
  schemaDir: string;
  /** Undefined when the UI server could not be provided (the profile then runs without a Web UI). */
  uiServer?: string;
  source: 'env' | 'cache' | 'build';
  uiSource?: 'env' | 'cache' | 'build';
}

export function serverCacheDir(): string {
  return join(cacheDir(), 'temporal-server', TEMPORAL_SERVER_VERSION);
}

export function uiServerCachePath(): string {
  return join(cacheDir(), 'temporal-ui-server', TEMPORAL_UI_SERVER_VERSION, 'temporal-ui-server');
}

const inServerDir = (dir: string) => ({
  server: join(dir, 'temporal-server'),
  sqlTool: join(dir, 'temporal-sql-tool'),
  schemaDir: join(dir, 'schema', 'postgresql', 'v12'),
});

/**
 * TEMPORAL_SERVER_PATH + TEMPORAL_SQL_TOOL_PATH + TEMPORAL_SCHEMA_DIR (all three), else the cache,
 * else a build; TEMPORAL_UI_SERVER_PATH, else the cache, else a build.
 */
export async function resolveServerBinaries(options: { progress?: Progress } = {}): Promise<ServerBinaries> {
  const progress = options.progress ?? (() => undefined);
  const { TEMPORAL_SERVER_PATH: server, TEMPORAL_SQL_TOOL_PATH: sqlTool, TEMPORAL_SCHEMA_DIR: schemaDir } = process.env;
  let core: Pick<ServerBinaries, 'server' | 'sqlTool' | 'schemaDir' | 'source'>;
  if (server && sqlTool && schemaDir) {
    core = { server, sqlTool, schemaDir, source: 'env' };
  } else {
    const cached = inServerDir(serverCacheDir());
    if (existsSync(cached.server)) core = { ...cached, source: 'cache' };
    else {
      await buildServer(serverCacheDir(), progress);
      core = { ...cached, source: 'build' };
    }
  }
  const ui = process.env.TEMPORAL_UI_SERVER_PATH;
  if (ui) return { ...core, uiServer: ui, uiSource: 'env' };
  if (existsSync(uiServerCachePath())) return { ...core, uiServer: uiServerCachePath(), uiSource: 'cache' };
  await buildUiServer(uiServerCachePath(), progress);
  return { ...core, uiServer: uiServerCachePath(), uiSource: 'build' };
}

async function buildServer(target: string, progress: Progress): Promise<void> {
  await requireGo('install Go 1.25+, or set TEMPORAL_SERVER_PATH, TEMPORAL_SQL_TOOL_PATH and TEMPORAL_SCHEMA_DIR');
  const staging = `${target}.build-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(join(staging, 'bin'), { recursive: true });
  const env = { ...process.env, GOBIN: join(staging, 'bin'), GOWORK: 'off' };
  progress(`building the Temporal server ${TEMPORAL_SERVER_VERSION} and its SQL tool with go install (several minutes on 2 cores, once)`);
  const started = Date.now();
  await streamCommand('go', ['install', '-v', `${SERVER_MODULE}/cmd/server@${TEMPORAL_SERVER_VERSION}`, `${SERVER_MODULE}/cmd/tools/sql@${TEMPORAL_SERVER_VERSION}`], env, progress, 'go');
  const paths = inServerDir(staging);
  await rename(join(staging, 'bin', 'server'), paths.server);
  await rename(join(staging, 'bin', 'sql'), paths.sqlTool);
  await rm(join(staging, 'bin'), { recursive: true, force: true });
  // The schema files ship inside the module, which `go install` just put in the module cache.
  const { stdout } = await run('go', ['mod', 'download', '-json', `${SERVER_MODULE}@${TEMPORAL_SERVER_VERSION}`], { env, maxBuffer: 1024 * 1024 });
  const moduleDir = (JSON.parse(stdout) as { Dir?: string }).Dir;
  if (!moduleDir || !existsSync(join(moduleDir, 'schema', 'postgresql', 'v12'))) throw new Error(`the ${SERVER_MODULE}@${TEMPORAL_SERVER_VERSION} module has no schema/postgresql/v12 (module dir: ${moduleDir ?? 'unknown'})`);
  await cp(join(moduleDir, 'schema', 'postgresql', 'v12'), paths.schemaDir, { recursive: true });
  await run('chmod', ['-R', 'u+w', join(staging, 'schema')]); // the module cache is read-only
  await mkdir(join(target, '..'), { recursive: true });
  await rm(target, { recursive: true, force: true });
  await rename(staging, target);
  progress(`Temporal server ready in ${Math.round((Date.now() - started) / 1000)} s: ${target}`);
}

async function buildUiServer(target: string, progress: Progress): Promise<void> {
  await requireGo('install Go 1.24+, or set TEMPORAL_UI_SERVER_PATH');
  const staging = `${target}.build-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  progress(`building the Temporal Web UI server ${TEMPORAL_UI_SERVER_VERSION} with go install (once)`);
  const started = Date.now();
  await streamCommand('go', ['install', '-v', `${UI_MODULE}/cmd/server@${TEMPORAL_UI_SERVER_VERSION}`], { ...process.env, GOBIN: staging, GOWORK: 'off' }, progress, 'go');
  await mkdir(join(target, '..'), { recursive: true });
  await rename(join(staging, 'server'), target);
  await rm(staging, { recursive: true, force: true });
  progress(`Temporal Web UI server ready in ${Math.round((Date.now() - started) / 1000)} s: ${target}`);
}
