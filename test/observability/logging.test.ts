import { describe, expect, it } from 'vitest';
import { prettyLine, wantsPretty } from '../../src/observability/logger.js';
import { sdkLogLevel } from '../../src/observability/runtime.js';
import { markEnded } from '../../src/observability/endings.js';

describe('log format', () => {
  it('is human on a terminal, JSON otherwise or when LOG_FORMAT=json', () => {
    expect(wantsPretty(undefined, true)).toBe(true);
    expect(wantsPretty(undefined, false)).toBe(false);
    expect(wantsPretty('json', true)).toBe(false);
    expect(wantsPretty('pretty', false)).toBe(true);
  });

  it('prints time, level, message, then the fields with transferId first', () => {
    const line = JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 2, 3, 4, 5, 678), service: 'transfer-worker', name: 'transfer-worker', status: 'FAILED', transferId: 'tr-1', err: 'account a has insufficient available funds', msg: 'transfer FAILED (INSUFFICIENT_FUNDS): account a has insufficient available funds' });
    expect(prettyLine(line)).toBe('03:04:05.678 WARN  transfer FAILED (INSUFFICIENT_FUNDS): account a has insufficient available funds transferId=tr-1 status=FAILED\n');
    expect(prettyLine(JSON.stringify({ level: 30, time: 0, msg: 'a\nb', note: 'two words' }))).toBe('00:00:00.000 INFO  a\n    b note="two words"\n');
    expect(prettyLine('not json')).toBe('not json\n');
  });
});

describe('SDK log lines', () => {
  it('sends the bundler report and repeated refusal lines to debug, and keeps the rest', () => {
    expect(sdkLogLevel({ level: 'INFO', message: 'asset workflow-bundle-a759.js 1.74 MiB [emitted]\nwebpack 5.101.0 compiled successfully in 900 ms' })).toBe('debug');
    expect(sdkLogLevel({ level: 'INFO', message: 'Workflow bundle created', meta: { size: '1.74MB' } })).toBe('info');
    expect(sdkLogLevel({ level: 'WARN', message: 'Activity failed', meta: { error: { type: 'INSUFFICIENT_FUNDS', nonRetryable: true } } })).toBe('debug');
    expect(sdkLogLevel({ level: 'WARN', message: 'Activity failed', meta: { error: { type: 'TransientError', nonRetryable: false } } })).toBe('warn');
    expect(sdkLogLevel({ level: 'WARN', message: 'Workflow failed', meta: { error: { type: 'TRANSFER_FAILED' } } })).toBe('debug');
    expect(sdkLogLevel({ level: 'WARN', message: 'Workflow failed', meta: { error: { type: 'Error' } } })).toBe('warn');
    // From the workflow thread the error arrives without its type: the run id says the outcome line was written.
    expect(sdkLogLevel({ level: 'WARN', message: 'Workflow failed', meta: { runId: 'run-1', error: {} } })).toBe('warn');
    markEnded('run-1');
    expect(sdkLogLevel({ level: 'WARN', message: 'Workflow failed', meta: { runId: 'run-1', error: {} } })).toBe('debug');
    expect(sdkLogLevel({ level: 'ERROR', message: 'asset workflow-bundle-x.js' })).toBe('error');
  });
});
