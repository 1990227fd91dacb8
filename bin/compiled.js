// Whether dist/ (the compiled CLI, `npm run build`) is current: bin/transfer.js runs it only then.
// The rule: dist/.build-stamp exists and its mtime (the time its build started) is not older than
// any file under src/, workflows/ or activities/, nor tsconfig.json / tsconfig.build.json. Editing a
// source therefore switches back to the sources (tsx) at once, until the next `npm run build`.
// TRANSFER_FROM_SOURCE=1 forces the sources whatever dist/ holds.
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

function newestSource(dir) {
  let newest = 0;
  for (const file of ['tsconfig.json', 'tsconfig.build.json']) {
    try {
      newest = Math.max(newest, statSync(dir + file).mtimeMs);
    } catch {
      // absent: nothing to compare
    }
  }
  for (const sub of ['src', 'workflows', 'activities']) {
    for (const entry of readdirSync(dir + sub, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) newest = Math.max(newest, statSync(`${entry.parentPath ?? entry.path}/${entry.name}`).mtimeMs);
    }
  }
  return newest;
}

/** `dir`: the package root (a path ending in '/'); tests pass a directory of their own. */
export function compiledIsCurrent(env = process.env, dir = root) {
  if (env.TRANSFER_FROM_SOURCE === '1') return false;
  let built;
  try {
    built = statSync(`${dir}dist/.build-stamp`).mtimeMs;
  } catch {
    return false;
  }
  try {
    return built >= newestSource(dir);
  } catch {
    return false; // a source directory missing: do not trust dist/
  }
}
