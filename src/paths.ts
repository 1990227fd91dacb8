import { fileURLToPath } from 'node:url';

/**
 * The package root, whether this module runs from its source (src/paths.ts through tsx) or compiled
 * (dist/src/paths.js): files that are not compiled (migrations/, sql/, docs/) are found from here.
 */
const here = new URL('.', import.meta.url);
export const PACKAGE_ROOT = new URL(here.pathname.endsWith('/dist/src/') ? '../../' : '../', here);

/** An absolute path to `relative` (e.g. 'migrations/') under the package root. */
export function fromRoot(relative: string): string {
  return fileURLToPath(new URL(relative, PACKAGE_ROOT));
}
