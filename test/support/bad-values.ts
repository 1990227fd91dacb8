/**
 * Values that must never be accepted, by kind. `argv: false` marks values a command line cannot
 * carry (the kernel ends an argument at NUL; Node encodes a lone surrogate as U+FFFD, which the
 * replacement entry covers), so the CLI catalogue skips them and the JSON channels keep them.
 */
export interface BadValue<T = unknown> {
  label: string;
  value: T;
  argv?: false;
}

const v = <T>(label: string, value: T, argv?: false): BadValue<T> => ({ label, value, ...(argv === false ? { argv } : {}) });

/** Text that is never acceptable in an id, key, memo or reason (with the lengths each one allows). */
export const BAD_TEXT: BadValue<string>[] = [
  v('NUL byte', 'a\u0000b', false),
  v('bell', 'a\u0007b'),
  v('newline', 'line\nbreak'),
  v('carriage return', 'a\rb'),
  v('tab', 'a\tb'),
  v('ANSI escape', '\u001b[31mred\u001b[0m'),
  v('DEL', 'a\u007fb'),
  v('C1 control (NEL)', 'a\u0085b'),
  v('lone high surrogate', 'a\uD800b', false),
  v('lone low surrogate', '\uDC00z', false),
  v('undecodable bytes (U+FFFD)', 'caf\uFFFD'),
];

/** Decimal amounts as typed on the command line (USD, two decimals). */
export const BAD_DECIMALS: BadValue<string>[] = [
  v('negative', '-5'),
  v('negative cents', '-0.01'),
  v('zero', '0'),
  v('zero with decimals', '0.00'),
  v('fractional minor units', '12.345'),
  v('exponent', '1e3'),
  v('negative exponent', '1E-2'),
  v('hexadecimal', '0x10'),
  v('beyond 64 bits', '99999999999999999999'),
  v('2^63 minor units', '92233720368547758.08'),
  v('empty', ''),
  v('blank', ' '),
  v('non-numeric', 'abc'),
  v('NaN', 'NaN'),
  v('Infinity', 'Infinity'),
  v('thousands separator', '1,000'),
  v('trailing dot', '12.'),
  v('leading dot', '.5'),
  v('explicit plus', '+5'),
  v('Arabic-Indic digits', '١٢'),
  v('fullwidth digits', '１２'),
  v('underscore separator', '1_000'),
  v('SQL metacharacters', "5'; DROP TABLE accounts;--"),
  v('shell metacharacters', '5; touch /tmp/pwned'),
  v('control character', '5\n6'),
];

/** Amounts in minor units as JSON values (workflow input, ledger calls). */
export const BAD_MINOR_UNITS: BadValue[] = [
  v('negative number', -5),
  v('negative string', '-1'),
  v('zero', 0),
  v('zero string', '0'),
  v('minus zero string', '-0'),
  v('fraction', 1.5),
  v('decimal string', '12.5'),
  v('exponent string', '1e3'),
  v('unsafe integer', 1e21),
  v('2^63', '9223372036854775808'),
  v('beyond 64 bits', '99999999999999999999999'),
  v('non-numeric', 'abc'),
  v('empty', ''),
  v('padded', ' 12'),
  v('fullwidth digits', '１２'),
  v('hexadecimal', '0x10'),
  v('null', null),
  v('boolean', true),
  v('array', ['5']),
  v('object', { value: '5' }),
  v('missing', undefined),
];

export const BAD_ACCOUNT_IDS: BadValue[] = [
  v('empty', ''),
  v('space and punctuation', 'bad id!'),
  v('system account', 'sys:external:USD'),
  v('65 characters', 'a'.repeat(65)),
  v('SQL metacharacters', "x'; DROP TABLE accounts;--"),
  v('shell substitution', '$(touch /tmp/pwned)'),
  v('backticks', '`id`'),
  v('path', '../etc/passwd'),
  v('leading dot', '.hidden'),
  v('non-ASCII letter', 'josé'),
  ...BAD_TEXT.map((b) => v(b.label, b.value, b.argv)),
];

/** The same as JSON values of the wrong type. */
export const WRONG_TYPES: BadValue[] = [v('number', 5), v('null', null), v('boolean', false), v('array', ['alice']), v('object', { id: 'alice' }), v('missing', undefined)];

export const BAD_CURRENCIES: BadValue[] = [
  v('empty', ''),
  v('lower case', 'usd'),
  v('unknown', 'XYZ'),
  v('too short', 'US'),
  v('too long', 'USDD'),
  v('SQL metacharacters', "USD'--"),
  v('fullwidth', 'ＵＳＤ'),
  v('NUL byte', 'US\u0000', false),
];

export const BAD_TRANSFER_IDS: BadValue<string>[] = [
  v('empty', ''),
  v('space', 'has space'),
  v('129 characters', 't'.repeat(129)),
  v('SQL metacharacters', "t'; DROP TABLE holds;--"),
  v('shell substitution', '$(id)'),
  v('leading dot', '.t'),
  ...BAD_TEXT,
];

/** Longer than each field allows. */
export const OVERSIZED = { memo: 'm'.repeat(501), reason: 'r'.repeat(501), key: 'k'.repeat(201), by: 'b'.repeat(101) };
