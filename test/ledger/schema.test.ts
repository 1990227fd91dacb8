import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestLedger, type TestLedger } from '../support/ledger.js';

/**
 * The migrated schema, normalised to text and committed as migrations/schema.snapshot.txt, so a
 * schema change is always a visible diff in review. After an intended migration change, refresh it
 * with UPDATE_SCHEMA_SNAPSHOT=1 and commit the result with the migration.
 */
const SNAPSHOT = new URL('../../migrations/schema.snapshot.txt', import.meta.url);

let t: TestLedger;
beforeAll(async () => {
  t = await createTestLedger(1);
});
afterAll(async () => t?.drop());

async function describeSchema(): Promise<string> {
  const pool = t.ledger.shards[0]!.pool;
  const sections: [string, string][] = [
    ['columns', `SELECT table_name || '.' || column_name || ' ' || data_type || CASE WHEN is_nullable = 'NO' THEN ' not null' ELSE '' END
                 || coalesce(' default ' || column_default, '') AS line
                 FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`],
    ['constraints', `SELECT c.conrelid::regclass || ' ' || c.conname || ': ' || pg_get_constraintdef(c.oid) AS line
                     FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public' ORDER BY 1`],
    ['indexes', `SELECT indexdef AS line FROM pg_indexes WHERE schemaname = 'public' ORDER BY tablename, indexname`],
    ['triggers', `SELECT pg_get_triggerdef(t.oid) AS line FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND NOT t.tgisinternal ORDER BY 1`],
    ['functions', `SELECT p.proname || ' ' || md5(p.prosrc) AS line FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname = 'public' ORDER BY 1`],
    ['migrations', `SELECT version || ' ' || name AS line FROM schema_migrations ORDER BY version`],
  ];
  let text = '';
  for (const [title, sql] of sections) {
    const { rows } = await pool.query<{ line: string }>(sql);
    text += `# ${title}\n${rows.map((r) => r.line).join('\n')}\n\n`;
  }
  return text;
}

describe('schema snapshot', () => {
  it('matches the committed snapshot of the migrated schema', async () => {
    const actual = await describeSchema();
    if (process.env.UPDATE_SCHEMA_SNAPSHOT === '1') await writeFile(SNAPSHOT, actual);
    const committed = await readFile(SNAPSHOT, 'utf8').catch(() => '(no snapshot committed)');
    expect(actual).toBe(committed);
  });
});
