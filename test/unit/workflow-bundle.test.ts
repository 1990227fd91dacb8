import { stat } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { cachedWorkflowBundle } from '../../src/temporal/bundle.js';

describe('cached workflow bundle', () => {
  it('is built once per code version and then reused as is', { timeout: 120_000 }, async () => {
    const lines: string[] = [];
    const first = await cachedWorkflowBundle((l) => lines.push(l));
    const before = await stat(first.codePath);
    const second = await cachedWorkflowBundle((l) => lines.push(`again: ${l}`));
    expect(second.codePath).toBe(first.codePath);
    expect((await stat(second.codePath)).mtimeMs).toBe(before.mtimeMs);
    expect(lines.filter((l) => l.startsWith('again:'))).toEqual([]); // the second call built nothing
    expect(before.size).toBeGreaterThan(100_000); // a real bundle: the SDK's workflow runtime and ours
  });
});
