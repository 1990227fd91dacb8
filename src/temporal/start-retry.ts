/**
 * The SDK gives an ephemeral server 5 s to accept connections and then kills it. A cold start on a
 * loaded 2-core machine (first exec of a 250 MB binary, a JVM warming up) can miss that window, so
 * starting is retried a few times; a real failure still surfaces after the last attempt.
 */
export async function startWithRetry<T>(what: string, start: () => Promise<T>, attempts = 4, log: (line: string) => void = () => undefined): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      if (attempt >= attempts || !/did not start within/.test(message)) throw error;
      log(`${what} was slow to start (attempt ${attempt}/${attempts}); trying again`);
    }
  }
}

/**
 * A freshly started server accepts TCP before its frontend is healthy ("Frontend is not healthy
 * yet", UNAVAILABLE); connecting is retried until it answers or `timeoutMs` passes.
 */
export async function connectWhenHealthy<T>(connect: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await connect();
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      if (Date.now() > deadline || !/not healthy|unavailable|UNAVAILABLE/i.test(message)) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
