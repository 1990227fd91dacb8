import { connect, createServer } from 'node:net';

/** True when nothing listens on 127.0.0.1:port (we try to bind it and let go at once). */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The preferred port, or the next free one above it (so a second stack never fights the first). */
export async function freePort(preferred: number, avoid: readonly number[] = [], attempts = 200): Promise<number> {
  for (let port = preferred; port < preferred + attempts; port++) {
    if (!avoid.includes(port) && (await isPortFree(port))) return port;
  }
  throw new Error(`no free port in ${preferred}-${preferred + attempts - 1} on 127.0.0.1`);
}

/**
 * Runs `bind` on the first free port from `preferred` on. Another process can take that port between
 * the check and the bind (two stacks starting at once): on EADDRINUSE the next free port is tried.
 */
export async function bindFreePort<T>(preferred: number, avoid: readonly number[], bind: (port: number) => Promise<T>, attempts = 10): Promise<T> {
  let from = preferred;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort(from, avoid);
    try {
      return await bind(port);
    } catch (error) {
      if (!addressInUse(error) || attempt >= attempts) throw error;
      from = port + 1;
    }
  }
}

/** EADDRINUSE from Node, or the same refusal as a native library words it (the Temporal runtime's exporter). */
function addressInUse(error: unknown): boolean {
  const e = error as NodeJS.ErrnoException | undefined;
  return e?.code === 'EADDRINUSE' || /address already in use/i.test(e?.message ?? '');
}

/** Any free port chosen by the kernel. */
export async function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True once something accepts TCP connections on host:port (a server we started is listening). */
export function isListening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
