/**
 * Python's timezone-aware datetime as barman writes and reads it in backup.info:
 * `str(datetime)` (e.g. `2024-01-02 03:04:05.123456+00:00`), `ctime()` and `isoformat()` for
 * the JSON listing. Kept as wall-clock fields + UTC offset + microseconds (a JS Date has only
 * milliseconds and no offset), so that a time read from a barman file is written back and
 * printed exactly as barman would.
 */

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// What dateutil.parser accepts in the forms barman and pgark produce: ISO date, ' ' or 'T',
// optional seconds and fraction, optional offset (Z, UTC, +HH, +HHMM, +HH:MM).
const TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?$/i;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

export class PyDateTime {
  private constructor(
    /** Milliseconds since the epoch of the wall-clock fields read as UTC (i.e. without the offset). */
    private readonly wallMs: number,
    /** 0..999999, the full sub-second part. */
    readonly microsecond: number,
    /** Offset from UTC in minutes (east positive). */
    readonly offsetMinutes: number,
  ) {}

  /** A UTC time from a Date (microseconds from its milliseconds, plus `extraMicros` when known). */
  static fromDate(d: Date, extraMicros = 0): PyDateTime {
    const ms = d.getTime();
    const wholeSecondMs = Math.floor(ms / 1000) * 1000;
    return new PyDateTime(wholeSecondMs, (ms - wholeSecondMs) * 1000 + extraMicros, 0);
  }

  /** Parses str(datetime)/isoformat() text; a time without offset is local, as barman's load_datetime_tz does. */
  static parse(text: string): PyDateTime {
    const m = TIME_RE.exec(text.trim());
    if (!m) throw new Error(`unrecognised time ${JSON.stringify(text)}`);
    const [, y, mo, d, h, mi, s, frac, tz] = m;
    const wallMs = Date.UTC(+y, +mo - 1, +d, +h, +mi, s ? +s : 0);
    const check = new Date(wallMs);
    if (check.getUTCDate() !== +d || check.getUTCMonth() !== +mo - 1 || +h > 23 || +mi > 59 || (s && +s > 59)) {
      throw new Error(`invalid time ${JSON.stringify(text)}`);
    }
    const microsecond = frac ? Number(frac.slice(0, 6).padEnd(6, '0')) : 0;
    let offsetMinutes: number;
    if (!tz) {
      // Local zone offset at that wall time (getTimezoneOffset is minutes west of UTC).
      offsetMinutes = -new Date(+y, +mo - 1, +d, +h, +mi, s ? +s : 0).getTimezoneOffset();
    } else if (/^(Z|UTC|GMT)$/i.test(tz)) {
      offsetMinutes = 0;
    } else {
      const digits = tz.slice(1).replace(':', '');
      const minutes = Number(digits.slice(0, 2)) * 60 + (digits.length > 2 ? Number(digits.slice(2, 4)) : 0);
      offsetMinutes = tz[0] === '-' ? -minutes : minutes;
    }
    return new PyDateTime(wallMs, microsecond, offsetMinutes);
  }

  /** The instant (sub-millisecond digits dropped). */
  toDate(): Date {
    return new Date(this.epochMs());
  }

  epochMs(): number {
    return this.wallMs - this.offsetMinutes * 60_000 + Math.floor(this.microsecond / 1000);
  }

  /** Microseconds since the epoch, for exact ordering. */
  epochMicros(): bigint {
    return BigInt(this.wallMs - this.offsetMinutes * 60_000) * 1000n + BigInt(this.microsecond);
  }

  private wall(): Date {
    return new Date(this.wallMs);
  }

  private offsetText(): string {
    const sign = this.offsetMinutes < 0 ? '-' : '+';
    const abs = Math.abs(this.offsetMinutes);
    return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  }

  isoformat(sep = 'T'): string {
    const w = this.wall();
    const date = `${pad(w.getUTCFullYear(), 4)}-${pad(w.getUTCMonth() + 1)}-${pad(w.getUTCDate())}`;
    const time = `${pad(w.getUTCHours())}:${pad(w.getUTCMinutes())}:${pad(w.getUTCSeconds())}`;
    const frac = this.microsecond ? `.${pad(this.microsecond, 6)}` : '';
    return `${date}${sep}${time}${frac}${this.offsetText()}`;
  }

  /** Python str(datetime). */
  toString(): string {
    return this.isoformat(' ');
  }

  /** Python datetime.ctime(), in the time's own offset: 'Tue Jan  2 03:04:05 2024'. */
  ctime(): string {
    const w = this.wall();
    const time = `${pad(w.getUTCHours())}:${pad(w.getUTCMinutes())}:${pad(w.getUTCSeconds())}`;
    return `${WEEKDAYS[w.getUTCDay()]} ${MONTHS[w.getUTCMonth()]} ${String(w.getUTCDate()).padStart(2, ' ')} ${time} ${w.getUTCFullYear()}`;
  }

  toJSON(): string {
    return this.isoformat();
  }
}
