import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript next to the entry point (no declarations)
import { compiledIsCurrent } from '../../bin/compiled.js';

/** bin/transfer.js runs dist/ only while its build stamp is at least as new as every source. */
const dir = `${mkdtempSync(join(tmpdir(), 'compiled-'))}/`;
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const current = (env: Record<string, string> = {}) => compiledIsCurrent(env, dir) as boolean;
const at = (path: string, seconds: number) => utimesSync(dir + path, seconds, seconds);

describe('when the CLI runs compiled code', () => {
  it('runs dist/ when built after every source, the sources otherwise', () => {
    expect(current()).toBe(false); // nothing built
    for (const sub of ['src/cli', 'workflows', 'activities', 'dist']) mkdirSync(dir + sub, { recursive: true });
    writeFileSync(`${dir}src/cli/main.ts`, '');
    writeFileSync(`${dir}workflows/index.ts`, '');
    writeFileSync(`${dir}activities/index.ts`, '');
    writeFileSync(`${dir}tsconfig.json`, '{}');
    for (const f of ['src/cli/main.ts', 'workflows/index.ts', 'activities/index.ts', 'tsconfig.json']) at(f, 1_000);
    writeFileSync(`${dir}dist/.build-stamp`, '');
    at('dist/.build-stamp', 2_000);
    expect(current()).toBe(true);
    expect(current({ TRANSFER_FROM_SOURCE: '1' })).toBe(false);

    at('src/cli/main.ts', 3_000); // a source edited after the build, in a subdirectory
    expect(current()).toBe(false);
    at('dist/.build-stamp', 3_000); // rebuilt (a stamp as old as the newest source counts)
    expect(current()).toBe(true);
    at('tsconfig.json', 4_000); // compiler settings changed
    expect(current()).toBe(false);
  });
});
