/**
 * Python literal syntax, as barman stores backup_label, tablespaces, copy_stats and
 * included_files in backup.info (`repr()` to write, `ast.literal_eval` to read).
 *
 * Written by hand because no npm library parses or prints Python literals: JSON and JSON5
 * parsers reject single quotes, tuples, True/False/None and Python's escape rules, and
 * nothing reproduces CPython's `repr()` (quote choice, `\xNN` escapes, float formatting).
 * This is the subset barman needs: None, True, False, int, float, str (with u/r prefixes,
 * triple quotes and implicit concatenation), list, tuple and dict with str keys.
 */

/** A Python float whose value happens to be integral (e.g. `0.0`), kept so that repr() round-trips. */
export class PyFloat {
  constructor(readonly value: number) {}
  valueOf(): number {
    return this.value;
  }
  toJSON(): number {
    return this.value;
  }
}

/** A Python tuple (barman writes tablespaces as tuples). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
  toJSON(): PyValue[] {
    return this.items;
  }
}

export interface PyDict {
  [key: string]: PyValue;
}

/**
 * JS view of a Python literal. A `number` is an int when integral and a float otherwise;
 * ints beyond 2^53 are `bigint`. Dicts are plain objects (JS orders integer-like keys first).
 */
export type PyValue = null | boolean | number | bigint | string | PyFloat | PyTuple | PyValue[] | PyDict;

// ---------------------------------------------------------------------------------------------
// repr()

const NON_PRINTABLE = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u;

/** CPython's str.__repr__: prefers single quotes, escapes \\, the quote, \t \n \r and non-printables. */
export function reprString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (cp < 0x20 || cp === 0x7f) out += '\\x' + hex(cp, 2);
    else if (cp < 0x7f) out += ch;
    else if (!NON_PRINTABLE.test(ch)) out += ch;
    else if (cp <= 0xff) out += '\\x' + hex(cp, 2);
    else if (cp <= 0xffff) out += '\\u' + hex(cp, 4);
    else out += '\\U' + hex(cp, 8);
  }
  return out + quote;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/**
 * CPython's float.__repr__: the shortest digits that round-trip (JS computes the same digits),
 * positional notation for exponents in [-4, 16), scientific otherwise with a signed
 * two-digit-minimum exponent ('1e-05', '1.5e+16'), and always a '.0' on integral values.
 */
export function reprFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, expText] = x.toExponential().split('e');
  const exp = Number(expText);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  const sign = negative ? '-' : '';
  if (exp >= -4 && exp < 16) {
    let text: string;
    if (exp < 0) text = '0.' + '0'.repeat(-exp - 1) + digits;
    else if (digits.length <= exp + 1) text = digits + '0'.repeat(exp + 1 - digits.length) + '.0';
    else text = digits.slice(0, exp + 1) + '.' + digits.slice(exp + 1);
    return sign + text;
  }
  const m = digits.length > 1 ? digits[0] + '.' + digits.slice(1) : digits;
  const e = Math.abs(exp).toString().padStart(2, '0');
  return `${sign}${m}e${exp < 0 ? '-' : '+'}${e}`;
}

/** Python repr() of a literal value. */
export function pyRepr(value: PyValue): string {
  if (value === null) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return reprString(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return Number.isInteger(value) ? integerText(value) : reprFloat(value);
  if (value instanceof PyFloat) return reprFloat(value.value);
  if (value instanceof PyTuple) {
    if (value.items.length === 1) return `(${pyRepr(value.items[0])},)`;
    return `(${value.items.map(pyRepr).join(', ')})`;
  }
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${reprString(k)}: ${pyRepr(v)}`)
    .join(', ')}}`;
}

function integerText(n: number): string {
  // Integral doubles beyond 2^53 print in JS as 1e+21 etc.; Python prints all the digits.
  return Number.isSafeInteger(n) ? String(n) : BigInt(n).toString();
}

// ---------------------------------------------------------------------------------------------
// ast.literal_eval()

export class PyLiteralError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at offset ${offset}`);
  }
}

/** Parses one Python literal (the subset described at the top of this file). */
export function parsePyLiteral(text: string): PyValue {
  const p = new LiteralParser(text);
  const value = p.value();
  p.skipSpace();
  if (!p.atEnd()) p.fail('unexpected text after the literal');
  return value;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

class LiteralParser {
  private pos = 0;
  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  fail(message: string): never {
    throw new PyLiteralError(message, this.pos);
  }

  skipSpace(): void {
    while (!this.atEnd() && /\s/.test(this.text[this.pos])) this.pos++;
  }

  value(): PyValue {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === undefined) this.fail('unexpected end of literal');
    if (c === '[') return this.sequence('[', ']');
    if (c === '(') return this.tuple();
    if (c === '{') return this.dict();
    if (c === '-' || c === '+' || c === '.' || /\d/.test(c)) return this.number();
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.pos))!;
      const word = m[0];
      const next = this.text[this.pos + word.length];
      if ((next === "'" || next === '"') && /^(?:[uU]|[rR])$/.test(word)) return this.strings();
      this.pos += word.length;
      if (word === 'None') return null;
      if (word === 'True') return true;
      if (word === 'False') return false;
      this.pos -= word.length;
      this.fail(`unsupported name "${word}"`);
    }
    if (c === "'" || c === '"') return this.strings();
    return this.fail(`unexpected character ${JSON.stringify(c)}`);
  }

  private expect(ch: string): void {
    this.skipSpace();
    if (this.text[this.pos] !== ch) this.fail(`expected "${ch}"`);
    this.pos++;
  }

  /** Comma-separated values up to `close`, a trailing comma allowed. */
  private items(close: string): { items: PyValue[]; trailingComma: boolean } {
    const items: PyValue[] = [];
    let trailingComma = false;
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === close) break;
      items.push(this.value());
      this.skipSpace();
      if (this.text[this.pos] === ',') {
        this.pos++;
        trailingComma = true;
        continue;
      }
      trailingComma = false;
      if (this.text[this.pos] !== close) this.fail(`expected "," or "${close}"`);
    }
    this.pos++;
    return { items, trailingComma };
  }

  private sequence(open: string, close: string): PyValue[] {
    this.expect(open);
    return this.items(close).items;
  }

  private tuple(): PyValue {
    this.expect('(');
    const { items, trailingComma } = this.items(')');
    // "(x)" is just x in parentheses; "(x,)" is a one-element tuple.
    if (items.length === 1 && !trailingComma) return items[0];
    return new PyTuple(items);
  }

  private dict(): PyDict {
    this.expect('{');
    const out: PyDict = Object.create(null) as PyDict;
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === '}') break;
      const keyAt = this.pos;
      const key = this.value();
      if (typeof key !== 'string') throw new PyLiteralError('only str dict keys are supported', keyAt);
      this.expect(':');
      out[key] = this.value();
      this.skipSpace();
      if (this.text[this.pos] === ',') {
        this.pos++;
        continue;
      }
      if (this.text[this.pos] !== '}') this.fail('expected "," or "}"');
    }
    this.pos++;
    return { ...out };
  }

  private number(): number | bigint | PyFloat {
    const start = this.pos;
    let sign = 1;
    while (this.text[this.pos] === '-' || this.text[this.pos] === '+') {
      if (this.text[this.pos] === '-') sign = -sign;
      this.pos++;
      this.skipSpace();
    }
    const rest = this.text.slice(this.pos);
    const radix = /^0([xX][0-9a-fA-F_]+|[oO][0-7_]+|[bB][01_]+)/.exec(rest);
    if (radix) {
      this.pos += radix[0].length;
      return applySign(BigInt(radix[0].replace(/_/g, '')), sign);
    }
    const m = /^(?:\d[\d_]*)?(?:\.(?:\d[\d_]*)?)?(?:[eE][+-]?\d[\d_]*)?/.exec(rest)!;
    const literal = m[0];
    if (literal === '' || literal === '.' || /^\.?[eE]/.test(literal)) {
      this.pos = start;
      this.fail('invalid number');
    }
    this.pos += literal.length;
    if (/^[jJ]/.test(this.text.slice(this.pos))) this.fail('complex numbers are not supported');
    const clean = literal.replace(/_/g, '');
    if (/[.eE]/.test(clean)) {
      const x = sign * Number(clean);
      return Number.isInteger(x) ? new PyFloat(x) : x;
    }
    if (/^0\d/.test(clean) && /[1-9]/.test(clean)) {
      this.pos = start;
      this.fail('leading zeros in a decimal integer');
    }
    return applySign(BigInt(clean), sign);
  }

  /** One or more adjacent string literals, concatenated as Python does. */
  private strings(): string {
    let out = '';
    do {
      out += this.string();
      this.skipSpace();
    } while (/^(?:[uUrR]?['"])/.test(this.text.slice(this.pos)));
    return out;
  }

  private string(): string {
    let raw = false;
    const prefix = this.text[this.pos];
    if (/[uUrR]/.test(prefix)) {
      raw = prefix === 'r' || prefix === 'R';
      this.pos++;
    }
    const q = this.text[this.pos];
    const triple = this.text.startsWith(q.repeat(3), this.pos);
    const close = triple ? q.repeat(3) : q;
    this.pos += close.length;
    let out = '';
    for (;;) {
      if (this.atEnd()) this.fail('unterminated string');
      if (this.text.startsWith(close, this.pos)) {
        this.pos += close.length;
        return out;
      }
      const c = this.text[this.pos];
      if (!triple && (c === '\n' || c === '\r')) this.fail('newline in a single-quoted string');
      if (c !== '\\') {
        out += c;
        this.pos++;
        continue;
      }
      const e = this.text[this.pos + 1];
      if (e === undefined) this.fail('unterminated string');
      if (raw) {
        out += c + e;
        this.pos += 2;
        continue;
      }
      this.pos += 2;
      if (e === '\n') continue;
      if (e in SIMPLE_ESCAPES) {
        out += SIMPLE_ESCAPES[e];
      } else if (/[0-7]/.test(e)) {
        const m = /^[0-7]{1,3}/.exec(this.text.slice(this.pos - 1))!;
        out += String.fromCodePoint(parseInt(m[0], 8));
        this.pos += m[0].length - 1;
      } else if (e === 'x' || e === 'u' || e === 'U') {
        const width = e === 'x' ? 2 : e === 'u' ? 4 : 8;
        const digits = this.text.slice(this.pos, this.pos + width);
        if (!new RegExp(`^[0-9a-fA-F]{${width}}$`).test(digits)) this.fail(`truncated \\${e} escape`);
        const cp = parseInt(digits, 16);
        if (cp > 0x10ffff) this.fail(`\\${e} escape beyond U+10FFFF`);
        out += String.fromCodePoint(cp);
        this.pos += width;
      } else if (e === 'N') {
        this.fail('\\N{...} escapes are not supported');
      } else {
        // Python keeps unknown escapes verbatim.
        out += c + e;
      }
    }
  }
}

function applySign(n: bigint, sign: number): number | bigint {
  const v = sign < 0 ? -n : n;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}
