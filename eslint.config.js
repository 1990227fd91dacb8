// Lint fences that the type checker cannot express. Typed rules catch promises nobody awaits (a
// floating promise in money code is a lost error); workflow code may not reach Node, the database
// or the activities' implementation (the sandbox would reject it at bundle time, lint says why earlier).
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = ['assert', 'buffer', 'child_process', 'crypto', 'dns', 'events', 'fs', 'http', 'https', 'net', 'os', 'path', 'process', 'stream', 'timers', 'url', 'util', 'worker_threads', 'zlib'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'test-results/**', 'scratch/**', 'test/workflows/histories/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  {
    files: ['workflows/**/*.ts', 'src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [...NODE_BUILTINS, ...NODE_BUILTINS.map((m) => `node:${m}`), 'pg', 'pino', '@temporalio/activity', '@temporalio/worker', '@temporalio/client'].map((name) => ({
          name,
          message: 'workflow code runs in a deterministic sandbox: no Node built-ins, database, client or worker APIs',
          allowTypeImports: true,
        })),
        patterns: [{ group: ['**/activities/*', '**/src/ledger/*', '**/src/db/*'], message: 'workflows reach activities and the ledger only through proxyActivities', allowTypeImports: true }],
      }],
    },
  },
);
