import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { CliError, emit, EXIT, type GlobalOptions } from '../output.js';

/** Single-quoted for a POSIX shell. */
const quoted = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

/**
 * `transfer env`: shell exports that make the Temporal CLI recipes (docs/temporal-cli.md) work as
 * written: PATH with the directory of the `temporal` we built, TEMPORAL_ADDRESS and
 * TEMPORAL_NAMESPACE of the running stack (the `temporal` CLI reads both). `eval "$(npx transfer env)"`.
 */
export function registerEnvCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('env')
    .description('print shell exports for the Temporal CLI: PATH (the built `temporal`), TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE; use: eval "$(npx transfer env)"')
    .action(async () => {
      const [{ cliCachePath }, { readStackInfo }] = await Promise.all([import('../../temporal/binaries.js'), import('../../embedded/stack-file.js')]);
      const stack = process.env.TEMPORAL_ADDRESS ? undefined : await readStackInfo();
      const address = process.env.TEMPORAL_ADDRESS || stack?.temporalAddress;
      if (!address) throw new CliError('no running stack and no TEMPORAL_ADDRESS: start the stack with `npm start` or `npx transfer up`', EXIT.UNREACHABLE, 'UNREACHABLE');
      const namespace = process.env.TEMPORAL_NAMESPACE || stack?.namespace || 'default';
      const binary = process.env.TEMPORAL_CLI_PATH || (existsSync(cliCachePath()) ? cliCachePath() : undefined);
      const bin = binary ? dirname(binary) : undefined;
      emit(globals(), { ...(bin ? { temporalBin: bin } : {}), TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace }, () => [
        ...(bin ? [`export PATH=${quoted(bin)}:"$PATH"`] : ['# no built `temporal` CLI yet: `npx transfer provision` builds it (or use one on your PATH)']),
        `export TEMPORAL_ADDRESS=${quoted(address)}`,
        `export TEMPORAL_NAMESPACE=${quoted(namespace)}`,
      ].join('\n'));
    });
}
