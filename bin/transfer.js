#!/usr/bin/env node
// Entry for `npx transfer` and the npm scripts: the compiled CLI (dist/, built by `npm run build`,
// which `npm install` / `npm ci` run through `prepare`) when it is current, otherwise the TypeScript
// sources through tsx, so an edited source never runs stale. The rule is in ./compiled.js;
// TRANSFER_FROM_SOURCE=1 forces the sources.
import { compiledIsCurrent } from './compiled.js';

if (compiledIsCurrent()) {
  await import('../dist/src/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
