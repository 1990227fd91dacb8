import { DefaultLogger, Runtime } from '@temporalio/worker';
import { signalChildrenOnExit } from '../../src/embedded/children.js';

// Expected activity failures (refusals under test) would otherwise flood the output at WARN.
Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });

// A test file's subprocesses (`transfer worker`, `transfer up`) must not outlive it when the run is
// interrupted: on SIGTERM/SIGINT the fork exits, and on exit its children are signalled by pid.
signalChildrenOnExit();
for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) process.once(signal, () => process.exit(code));
