import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { bindFreePort, ephemeralPort } from '../../src/embedded/ports.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** Listens on 127.0.0.1:port; rejects with the server's error (EADDRINUSE when taken). */
function listen(port: number): Promise<Server> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '127.0.0.1' }, () => {
      servers.push(server);
      resolve(server);
    });
  });
}

describe('bindFreePort: a port taken between the check and the bind', () => {
  it('moves on to the next free port when another process wins the race (EADDRINUSE)', async () => {
    const preferred = await ephemeralPort();
    const tried: number[] = [];
    const server = await bindFreePort(preferred, [], async (port) => {
      tried.push(port);
      // The first time, a rival binds the checked port just before we do.
      if (tried.length === 1) await listen(port);
      return listen(port);
    });
    const bound = (server.address() as { port: number }).port;
    expect(tried[0]).toBe(preferred);
    expect(tried).toHaveLength(2);
    expect(bound).toBe(tried[1]);
    expect(bound).toBeGreaterThan(preferred);
  });

  it('passes any other error through at once, and gives up after its attempts', async () => {
    const preferred = await ephemeralPort();
    let calls = 0;
    await expect(bindFreePort(preferred, [], async () => {
      calls += 1;
      throw Object.assign(new Error('permission denied'), { code: 'EACCES' });
    })).rejects.toThrow('permission denied');
    expect(calls).toBe(1);
    calls = 0;
    await expect(bindFreePort(preferred, [], async () => {
      calls += 1;
      throw Object.assign(new Error('taken'), { code: 'EADDRINUSE' });
    }, 3)).rejects.toThrow('taken');
    expect(calls).toBe(3);
  });
});
