/** Resolves on the first SIGINT/SIGTERM: how a long-running command learns to stop. */
export function interrupted(): Promise<string> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}
