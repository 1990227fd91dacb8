#!/usr/bin/env node
// `npm run build` (and `prepare`, which `npm install` / `npm ci` run): compiles src/, workflows/ and
// activities/ to dist/ with tsc (tsconfig.build.json), then writes dist/.build-stamp. bin/transfer.js
// runs dist/ only while that stamp is at least as new as every source file (see bin/transfer.js).
// The stamp carries the time the build *started*: a source saved during the build counts as newer.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stamp = `${root}dist/.build-stamp`;
const started = new Date();

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  // An install without devDependencies (`npm ci --omit=dev`): no compiler, so no dist/;
  // bin/transfer.js then runs the sources through tsx.
  console.warn('build: typescript is not installed; skipping (the CLI runs from source through tsx)');
  process.exit(0);
}
if (!existsSync(`${root}src`)) {
  console.warn('build: no src/ here; skipping');
  process.exit(0);
}

rmSync(`${root}dist`, { recursive: true, force: true }); // no compiled leftovers of deleted sources
const result = spawnSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`], { stdio: 'inherit', cwd: root });
if (result.status !== 0) {
  rmSync(`${root}dist`, { recursive: true, force: true }); // never leave a half build that looks current
  process.exit(result.status ?? 1);
}
writeFileSync(stamp, `${started.toISOString()}\n`);
utimesSync(stamp, started, started);
