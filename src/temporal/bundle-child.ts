// Run by cachedWorkflowBundle in a child process: bundles workflows/ into the path given.
import { WORKFLOWS_PATH } from '../worker.js';
import { writeBundle } from './bundle.js';

const target = process.argv[2];
if (!target) throw new Error('usage: bundle-child.ts <target file>');
await writeBundle(target, WORKFLOWS_PATH); // workflows/index.ts, or its compiled .js under dist/
