import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

/**
 * Fences the workflow sandbox: workflow code may import only Temporal's workflow/common packages,
 * other workflow files and the pure domain modules. Activities, the ledger, the database, Node
 * built-ins and anything with side effects are reachable only as types.
 */
const WORKFLOWS = new URL('../../workflows/', import.meta.url);
const DOMAIN = new URL('../../src/domain/', import.meta.url);
const ALLOWED_PACKAGES = ['@temporalio/workflow', '@temporalio/common'];

async function valueImports(dir: URL): Promise<{ file: string; spec: string }[]> {
  const found: { file: string; spec: string }[] = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.ts'))) {
    const text = await readFile(new URL(file, dir), 'utf8');
    for (const match of text.matchAll(/^\s*(import|export)\s+(?!type\b)[^'"]*?from\s+'([^']+)'/gm)) {
      found.push({ file, spec: match[2]! });
    }
  }
  return found;
}

describe('workflow sandbox fence', () => {
  it('workflows/ imports values only from Temporal workflow packages, workflows/ and src/domain/', async () => {
    const bad = (await valueImports(WORKFLOWS)).filter(({ spec }) =>
      !(ALLOWED_PACKAGES.includes(spec) || (spec.startsWith('./') && !spec.includes('..')) || spec.startsWith('../src/domain/')),
    );
    expect(bad).toEqual([]);
  });

  it('src/domain/ (imported by workflows) stays pure: no Node built-ins, no database, no activities', async () => {
    const bad = (await valueImports(DOMAIN)).filter(({ spec }) => !(spec.startsWith('./') || spec === '@temporalio/common'));
    expect(bad).toEqual([]);
  });

  it('the fence itself sees a forbidden import', async () => {
    const sample = `import { Ledger } from '../src/ledger/ledger.js';\nimport type { X } from 'pg';`;
    const matches = [...sample.matchAll(/^\s*(import|export)\s+(?!type\b)[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[2]);
    expect(matches).toEqual(['../src/ledger/ledger.js']);
  });
});
