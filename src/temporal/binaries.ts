import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import type { EphemeralServerExecutable } from '@temporalio/testing';
import { cacheDir } from '../embedded/paths.js';

const run = promisify(execFile);

/**
 * Finds (or builds) the two Temporal servers the SDK can run from a path: the dev server (the
 * `temporal` CLI with its Web UI) and the Java time-skipping test server. Order:
 *   1. an explicit path (TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH);
 *   2. an executable on PATH;
 *   3. this project's cache, filled by step 5;
 *   4. the SDK's own download, when its download host answers within a few seconds;
 *   5. a build from the package registries: `go install` for the CLI, Maven for the test server.
 */

/** Newest CLI tag whose go.mod has no `replace` directive, so `go install …@version` accepts it. */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEST_SERVER_VERSION = '1.38.0';
const CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
const DOWNLOAD_PROBE = 'https://temporal.download';

export type Progress = (line: string) => void;

export interface ResolvedServer {
  executable: EphemeralServerExecutable;
  /** Where it came from, for the operator: env, path, cache, download or build. */
  source: 'env' | 'path' | 'cache' | 'download' | 'build';
  path?: string;
}

export interface ResolveOptions {
  progress?: Progress;
  /** Skip the SDK-download probe (tests and CI on offline machines set TEMPORAL_OFFLINE=1). */
  offline?: boolean;
}

/**
 * How our build of the CLI is made; part of its cache path, so a change here rebuilds it. 2: with
 * `-ldflags -X …temporalcli.Version=…`, so `temporal --version` reports its real version (a plain
 * `go install` leaves it at 0.0.0-DEV).
 */
const CLI_BUILD = 2;

export function cliCachePath(): string {
  return join(cacheDir(), 'temporal-cli', `${TEMPORAL_CLI_VERSION}-build${CLI_BUILD}`, 'temporal');
}

export function testServerCachePath(): string {
  return join(cacheDir(), 'temporal-test-server', TEST_SERVER_VERSION, 'temporal-test-server');
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

let downloadReachable: Promise<boolean> | undefined;

/** Fails fast: a closed network answers at once or within 4 s, never a hang. */
export function canDownload(offline = process.env.TEMPORAL_OFFLINE === '1'): Promise<boolean> {
  if (offline) return Promise.resolve(false);
  downloadReachable ??= fetch(DOWNLOAD_PROBE, { method: 'HEAD', signal: AbortSignal.timeout(4_000) })
    .then(() => true)
    .catch(() => false);
  return downloadReachable;
}

const existingPath = (path: string): EphemeralServerExecutable => ({ type: 'existing-path', path });
const sdkDownload = (): EphemeralServerExecutable => ({ type: 'cached-download', downloadDir: join(cacheDir(), 'sdk-download') });

interface ServerSpec {
  envVar: string;
  binary: string;
  cachePath: () => string;
  build: (target: string, progress: Progress) => Promise<void>;
}

async function resolveServer(spec: ServerSpec, options: ResolveOptions): Promise<ResolvedServer> {
  const explicit = process.env[spec.envVar];
  if (explicit) return { executable: existingPath(explicit), source: 'env', path: explicit };
  const found = onPath(spec.binary);
  if (found) return { executable: existingPath(found), source: 'path', path: found };
  const cached = spec.cachePath();
  if (existsSync(cached)) return { executable: existingPath(cached), source: 'cache', path: cached };
  if (await canDownload(options.offline)) return { executable: sdkDownload(), source: 'download' };
  await spec.build(cached, options.progress ?? (() => undefined));
  return { executable: existingPath(cached), source: 'build', path: cached };
}

export function resolveDevServer(options: ResolveOptions = {}): Promise<ResolvedServer> {
  return resolveServer({ envVar: 'TEMPORAL_CLI_PATH', binary: 'temporal', cachePath: cliCachePath, build: buildCli }, options);
}

export function resolveTestServer(options: ResolveOptions = {}): Promise<ResolvedServer> {
  return resolveServer({ envVar: 'TEMPORAL_TEST_SERVER_PATH', binary: 'temporal-test-server', cachePath: testServerCachePath, build: fetchTestServer }, options);
}

async function requireTool(tool: string, args: string[], install: string): Promise<void> {
  try {
    await run(tool, args);
  } catch {
    throw new Error(`cannot provide the Temporal servers: '${tool}' is not installed (${install}), the SDK download host is unreachable, and no TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH is set`);
  }
}

/** Fails with what to do instead when Go is missing. */
export async function requireGo(instead: string): Promise<void> {
  try {
    await run('go', ['version']);
  } catch {
    throw new Error(`cannot build the Temporal binaries: 'go' is not installed (${instead})`);
  }
}

async function buildCli(target: string, progress: Progress): Promise<void> {
  await requireTool('go', ['version'], 'install Go 1.24+ or put a `temporal` CLI on PATH');
  const staging = `${target}.build-${process.pid}`;
  await mkdir(staging, { recursive: true });
  progress(`building the Temporal CLI ${TEMPORAL_CLI_VERSION} with go install (a few minutes on 2 cores, once)`);
  // GOWORK=off keeps a surrounding go.work from interfering; the binary lands in a staging
  // directory and is renamed into place only when complete, so an interrupted build is never cached.
  // The version variable of the CLI module (temporalcli/commands.go: `var Version = "0.0.0-DEV"`).
  const ldflags = `-X ${CLI_MODULE.replace(/\/cmd\/temporal$/, '')}/temporalcli.Version=${TEMPORAL_CLI_VERSION.replace(/^v/, '')}`;
  await streamCommand('go', ['install', '-v', '-ldflags', ldflags, `${CLI_MODULE}@${TEMPORAL_CLI_VERSION}`], { ...process.env, GOBIN: staging, GOWORK: 'off' }, progress, 'go');
  await mkdir(join(target, '..'), { recursive: true });
  await rename(join(staging, 'temporal'), target);
  await rm(staging, { recursive: true, force: true });
  progress(`Temporal CLI ready: ${target}`);
}

async function fetchTestServer(target: string, progress: Progress): Promise<void> {
  await requireTool('java', ['-version'], 'install a Java 17+ runtime');
  await requireTool('mvn', ['-v'], 'install Maven');
  const dir = join(target, '..');
  await mkdir(dir, { recursive: true });
  const pom = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.durable-transfer</groupId><artifactId>temporal-test-server-runtime</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>io.temporal</groupId><artifactId>temporal-test-server</artifactId><version>${TEST_SERVER_VERSION}</version></dependency>
  </dependencies>
</project>
`;
  await writeFile(join(dir, 'pom.xml'), pom);
  progress(`fetching the Temporal test server ${TEST_SERVER_VERSION} and its dependencies from Maven Central (once)`);
  await rm(join(dir, 'lib'), { recursive: true, force: true });
  await streamCommand('mvn', ['-B', '-f', join(dir, 'pom.xml'), 'dependency:copy-dependencies', `-DoutputDirectory=${join(dir, 'lib')}`], process.env, progress, 'mvn');
  // The SDK runs this path with "<port> --enable-time-skipping"; the wrapper hands those to the JVM.
  const wrapper = `#!/bin/sh
# Temporal time-skipping test server ${TEST_SERVER_VERSION}, run from Maven Central jars.
exec java -XX:+UseSerialGC -Xss512k -cp "$(dirname "$0")/lib/*" io.temporal.testserver.TestServer "$@"
`;
  await writeFile(`${target}.tmp`, wrapper);
  await chmod(`${target}.tmp`, 0o755);
  await rename(`${target}.tmp`, target);
  progress(`Temporal test server ready: ${target}`);
}

/** Runs a long build, turning its chatter into a progress line every few seconds. */
export function streamCommand(command: string, args: string[], env: NodeJS.ProcessEnv, progress: Progress, label: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let steps = 0;
    let last = '';
    let tail = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      tail = (tail + text).slice(-4000);
      for (const line of text.split('\n')) {
        if (line.trim()) {
          steps++;
          last = line.trim();
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setInterval(() => {
      const seconds = Math.round((Date.now() - started) / 1000);
      progress(`  ${label}: ${seconds}s, ${steps} steps, last: ${last.slice(0, 100)}`);
    }, 10_000);
    child.once('error', (error) => {
      clearInterval(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearInterval(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} failed with exit code ${code}:\n${tail}`));
    });
  });
}
