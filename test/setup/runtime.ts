import { DefaultLogger, Runtime } from '@temporalio/worker';

// Expected activity failures (refusals under test) would otherwise flood the output at WARN.
Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
