import pino from 'pino';

/**
 * Structured logs; LOG_LEVEL picks the level. Every transfer-related line carries transferId.
 *
 * Format: JSON lines (one object a line, for collectors), except on a terminal: when the logger
 * writes to stderr and stderr is a TTY, each line is printed for people by `prettyLine` (time,
 * level, message, then the fields as key=value). LOG_FORMAT=json forces JSON, LOG_FORMAT=pretty
 * forces the human form. A file destination (the embedded stack's worker.log) is always JSON.
 */
export function createLogger(name: string, options: { level?: string; destination?: number | string; format?: string } = {}): pino.Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const destination = options.destination ?? 2;
  const settings = { name, level, base: { service: name } };
  if (destination === 2 && wantsPretty(options.format ?? process.env.LOG_FORMAT, process.stderr.isTTY === true)) {
    const colors = process.stderr.isTTY === true && !process.env.NO_COLOR;
    return pino(settings, { write: (line: string) => void process.stderr.write(prettyLine(line, colors)) });
  }
  return pino(settings, pino.destination({ dest: destination, sync: false }));
}

export function wantsPretty(format: string | undefined, isTTY: boolean): boolean {
  if (format === 'json') return false;
  if (format === 'pretty') return true;
  return isTTY;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLORS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
/** Fields every line has, or that the line shows elsewhere. */
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'service', 'v']);

function fieldValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value instanceof Object && 'message' in value && typeof (value as { message: unknown }).message === 'string') return JSON.stringify((value as { message: string }).message);
  return JSON.stringify(value) ?? String(value);
}

/**
 * One pino JSON line as a person reads it:
 *   12:34:56.789 WARN  transfer FAILED (INSUFFICIENT_FUNDS): … transferId=tr-1 from=a to=b
 * transferId first among the fields; multi-line messages (stack traces) keep their lines, indented.
 * A line that is not JSON is passed through unchanged.
 */
export function prettyLine(json: string, colors = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const level = Number(entry['level']);
  const time = typeof entry['time'] === 'number' ? new Date(entry['time']).toISOString().slice(11, 23) : '';
  const name = (LEVEL_NAMES[level] ?? String(entry['level'])).padEnd(5);
  const shownLevel = colors && LEVEL_COLORS[level] ? `\u001b[${LEVEL_COLORS[level]}m${name}\u001b[39m` : name;
  const message = String(entry['msg'] ?? '').replace(/\n/g, '\n    ');
  // A long string field the message already quotes (err of an outcome line) is not shown twice.
  const repeated = (k: string) => typeof entry[k] === 'string' && (entry[k] as string).length > 20 && message.includes(entry[k] as string);
  const keys = Object.keys(entry).filter((k) => !HIDDEN.has(k) && !repeated(k)).sort((a, b) => Number(b === 'transferId') - Number(a === 'transferId'));
  const fields = keys.map((k) => `${k}=${fieldValue(entry[k])}`).join(' ');
  const shownFields = fields && colors ? `\u001b[2m${fields}\u001b[22m` : fields;
  return `${time} ${shownLevel} ${message}${fields ? ` ${shownFields}` : ''}\n`;
}

export type Logger = pino.Logger;
