#!/usr/bin/env node
// Entry for `npx transfer` and the npm scripts.
//
// Runs the compiled CLI (dist/, built by `npm run build`, which `npm install` / `npm ci` run through
// `prepare`) when it is current, and the TypeScript sources through tsx otherwise. The rule:
// dist/ is current when dist/.build-stamp exists and its mtime (the time its build started) is not
// older than any file under src/, workflows/ or activities/, nor tsconfig.json / tsconfig.build.json.
// So editing a source switches back to tsx at once (never stale code) until the next `npm run build`.
// TRANSFER_FROM_SOURCE=1 forces the sources (tsx) whatever dist/ holds.
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function newestSource() {
  let newest = 0;
  for (const file of ['tsconfig.json', 'tsconfig.build.json']) {
    try {
      newest = Math.max(newest, statSync(root + file).mtimeMs);
    } catch {
      // absent: nothing to compare
    }
  }
  for (const dir of ['src', 'workflows', 'activities']) {
    for (const entry of readdirSync(root + dir, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) newest = Math.max(newest, statSync(`${entry.parentPath ?? entry.path}/${entry.name}`).mtimeMs);
    }
  }
  return newest;
}

function compiledIsCurrent() {
  if (process.env.TRANSFER_FROM_SOURCE === '1') return false;
  let built;
  try {
    built = statSync(`${root}dist/.build-stamp`).mtimeMs;
  } catch {
    return false;
  }
  return built >= newestSource();
}

if (compiledIsCurrent()) {
  await import('../dist/src/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
