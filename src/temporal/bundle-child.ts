// Run by cachedWorkflowBundle in a child process: bundles workflows/ into the path given.
import { fileURLToPath } from 'node:url';
import { writeBundle } from './bundle.js';

const target = process.argv[2];
if (!target) throw new Error('usage: bundle-child.ts <target file>');
await writeBundle(target, fileURLToPath(new URL('../../workflows/index.ts', import.meta.url)));
