/**
 * Writes docs/openapi.json: the document the server serves at /openapi.json, built from the same
 * schemas (`npm run openapi`; test/api/openapi.test.ts fails when the checked-in file is stale).
 */
import { writeFile } from 'node:fs/promises';
import { openApiDocument } from './document.js';

const target = new URL('../../docs/openapi.json', import.meta.url);
await writeFile(target, `${JSON.stringify(await openApiDocument(), null, 2)}\n`);
process.stdout.write(`wrote ${target.pathname}\n`);
