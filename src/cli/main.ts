import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerAccountCommands } from './commands/accounts.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerEnvCommand } from './commands/env.js';
import { registerMessageCommands } from './commands/messages.js';
import { registerRepairCommand } from './commands/repair.js';
import { registerServeCommand } from './commands/serve.js';
import { registerStackCommands } from './commands/stack.js';
import { registerSlotCommands } from './commands/slots.js';
import { registerSuspenseCommands } from './commands/suspense.js';
import { registerTransferCommands } from './commands/transfers.js';
import { registerMessagingServiceCommands, registerWebhookCommands } from './commands/webhooks.js';
import { classify, EXIT, printed, type GlobalOptions } from './output.js';
import { fromRoot } from '../paths.js';

const program = new Command('transfer')
  .description('Durable money transfers between PostgreSQL ledger shards, coordinated by Temporal')
  .version((JSON.parse(readFileSync(fromRoot('package.json'), 'utf8')) as { version: string }).version, '--version', 'print the version')
  .option('--json', 'print exactly one JSON object on stdout')
  .option('--verbose', 'show stack traces on errors')
  .showHelpAfterError()
  .exitOverride();

const globals = () => program.opts<GlobalOptions>();
registerStackCommands(program, globals);
registerAccountCommands(program, globals);
registerTransferCommands(program, globals);
registerSuspenseCommands(program, globals);
registerSlotCommands(program, globals);
registerMessageCommands(program, globals);
registerRepairCommand(program, globals);
registerServeCommand(program, globals);
registerWebhookCommands(program, globals);
registerMessagingServiceCommands(program);
registerDoctorCommand(program, globals);
registerEnvCommand(program, globals);
for (const command of program.commands) {
  command.exitOverride();
  for (const sub of command.commands) sub.exitOverride();
}

/** --json as typed, even when commander stopped before parsing it (an unknown command, say). */
function wantsJson(): boolean {
  if (globals().json) return true;
  const args = process.argv.slice(2);
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}

function fail(exitCode: number, message: string, code?: string, fields?: readonly string[]): void {
  if (wantsJson() && !printed.stdout) process.stdout.write(`${JSON.stringify({ error: { message, ...(code ? { code } : {}), ...(fields ? { fields } : {}) } })}\n`);
  process.exitCode = exitCode;
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help is a success; everything else commander rejects is bad usage (commander already said why on stderr).
    if (error.exitCode === 0) process.exitCode = EXIT.OK;
    else fail(EXIT.USAGE, error.code === 'commander.help' ? 'a command is required (see --help)' : error.message.replace(/^error:\s*/, ''), 'USAGE');
  } else {
    const { exitCode, message, code, fields } = classify(error);
    fail(exitCode, message, code, fields);
    process.stderr.write(`transfer: ${message}\n`);
    if (globals().verbose && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  }
}
