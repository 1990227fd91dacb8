import { readdirSync, readFileSync } from 'node:fs';

/** Pids of this process's direct children, read from /proc (Linux); empty elsewhere. */
export function childPids(parent = process.pid): number[] {
  const pids: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      if (Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]) === parent) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/**
 * Last-resort cleanup for a process that is exiting without its normal shutdown (a test runner
 * killed by a signal exits at once): signal each child by its own pid, synchronously.
 */
export function signalChildrenOnExit(signalFor: (pid: number) => NodeJS.Signals = () => 'SIGTERM'): void {
  process.once('exit', () => {
    for (const pid of childPids()) {
      try {
        process.kill(pid, signalFor(pid));
      } catch {
        // already gone
      }
    }
  });
}
