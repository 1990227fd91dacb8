#!/usr/bin/env node
// Entry for `npx transfer` and the npm scripts: TypeScript runs through tsx, no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
