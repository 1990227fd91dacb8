import { Command, CommanderError } from 'commander';
import { registerAccountCommands } from './commands/accounts.js';
import { registerStackCommands } from './commands/stack.js';
import { registerTransferCommands } from './commands/transfers.js';
import { classify, EXIT, type GlobalOptions } from './output.js';

const program = new Command('transfer')
  .description('Durable money transfers between PostgreSQL ledger shards, coordinated by Temporal')
  .option('--json', 'print exactly one JSON object on stdout')
  .option('--verbose', 'show stack traces on errors')
  .showHelpAfterError()
  .exitOverride();

const globals = () => program.opts<GlobalOptions>();
registerStackCommands(program, globals);
registerAccountCommands(program, globals);
registerTransferCommands(program, globals);
for (const command of program.commands) {
  command.exitOverride();
  for (const sub of command.commands) sub.exitOverride();
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help and --version are successes; everything else commander rejects is bad usage.
    process.exitCode = error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  } else {
    const { exitCode, message, code } = classify(error);
    if (globals().json) process.stdout.write(`${JSON.stringify({ error: { message, ...(code ? { code } : {}) } })}\n`);
    process.stderr.write(`transfer: ${message}\n`);
    if (globals().verbose && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    process.exitCode = exitCode;
  }
}
