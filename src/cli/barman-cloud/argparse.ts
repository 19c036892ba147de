/**
 * A command-line parser with Python argparse's semantics, for pgark's barman-cloud drop-ins:
 * CloudNativePG builds argv for barman's argparse parsers, so the drop-ins must read every argv
 * those parsers read, the same way, and refuse what they refuse with the same exit status (3).
 *
 * What it reproduces (barman-cloud-cli-contract.md §1.2): options anywhere, positionals filled left
 * to right across the gaps; `--opt=value` and `--opt value`; unique prefixes of long options; short
 * flags clustered (`-vv`, `-eAES256`); the last repeat of an option wins; mutually exclusive groups
 * (a repeated flag does not conflict with itself); nargs="*" options that take every following
 * argument up to the next option; an element with a space that is not an option is a positional
 * (so `"--read-timeout 60"` is an unrecognized argument); `--` ends the options; -V/--version and
 * --help act when met. Specs are data (specs.ts); this module knows no command.
 *
 * Loaded on the archive_command path: node builtins only.
 */

/** How an option stores what it reads (argparse's `action`). */
export type ArgAction =
  /** A flag that sets `dest` to `constValue` (store_const / store_true). */
  | 'const'
  /** A flag counted each time it appears (-v -v, -vv). */
  | 'count'
  /** One value. */
  | 'value'
  /** nargs="*": every following argument that is not an option. */
  | 'list'
  /** A value that may be given several times, all kept (action="append"). */
  | 'append'
  | 'help'
  | 'version';

export interface OptionDef {
  /** Option strings as barman spells them: ['-e', '--encryption']. */
  flags: readonly string[];
  /** Key in the parse result. */
  dest: string;
  action: ArgAction;
  /** The value a 'const' flag stores (default true). */
  constValue?: string | boolean;
  choices?: readonly string[];
  /** Converts and checks a value; throws Error(message) like argparse's type= callable. */
  type?: (text: string) => string | number;
  metavar?: string;
  /** Name of the mutually exclusive group the option belongs to. */
  group?: string;
  help: string;
  /**
   * What pgark does with an option barman accepts but pgark does not act on: 'ignored' (tuning
   * that changes no stored byte's meaning; accepted silently) or 'refused' (the caller would get
   * something else than it asked for: the command fails clearly, exit 3). Absent = honoured.
   */
  pgark?: { support: 'ignored' | 'refused'; why: string };
}

export interface PositionalDef {
  dest: string;
  /** '?' = optional (argparse nargs="?"). */
  optional?: boolean;
  help: string;
}

export interface CommandSpec {
  /** The name argparse prints (basename of argv[0]). */
  prog: string;
  description: string;
  positionals: readonly PositionalDef[];
  options: readonly OptionDef[];
  /** Groups of which exactly one member must be given (argparse required=True). */
  requiredGroups?: readonly string[];
}

/** The options of `args` that pgark refuses (OptionDef.pgark), as one message; undefined when none. */
export function refusedOptions(spec: CommandSpec, args: ParsedArgs): string | undefined {
  const refused = spec.options.filter((o) => o.pgark?.support === 'refused' && args.given.has(o.dest) && args.values[o.dest] !== undefined);
  if (refused.length === 0) return undefined;
  return refused.map((o) => `${o.flags[o.flags.length - 1]} is not supported by pgark: ${o.pgark!.why}`).join('; ');
}

export type ArgValue = string | number | boolean | string[] | undefined;

export interface ParsedArgs {
  values: Record<string, ArgValue>;
  /** Option dests in the order their last occurrence was met. */
  given: Set<string>;
}

/** What the parser stops with: an error (exit 3), or --help / --version (exit 0, text on stdout). */
export type ParseOutcome = { kind: 'args'; args: ParsedArgs } | { kind: 'exit'; code: number; stdout?: string; stderr?: string };

/** barman's CloudArgumentParser.error() exits 3 (contract §1.2). */
export const ARGV_ERROR_EXIT = 3;

class ArgError extends Error {}

const NEGATIVE_NUMBER = /^-\d+$|^-\d*\.\d+$/;

function optionName(o: OptionDef): string {
  return o.flags.join('/');
}

/** argparse's metavar: the dest upper-cased for options. */
function metavarOf(o: OptionDef): string {
  if (o.metavar) return o.metavar;
  if (o.choices) return `{${o.choices.join(',')}}`;
  // argparse's default: the dest of the first long option, upper-cased.
  const long = o.flags.find((f) => f.startsWith('--')) ?? o.flags[0];
  return long.replace(/^-+/, '').replace(/-/g, '_').toUpperCase();
}

function formatOptionUsage(o: OptionDef): string {
  const f = o.flags[0];
  switch (o.action) {
    case 'value':
    case 'append':
      return `${f} ${metavarOf(o)}`;
    case 'list':
      return `${f} [${metavarOf(o)} ...]`;
    default:
      return f;
  }
}

export function usage(spec: CommandSpec): string {
  const parts = spec.options.filter((o) => o.action !== 'help').map((o) => `[${formatOptionUsage(o)}]`);
  for (const p of spec.positionals) parts.push(p.optional ? `[${p.dest}]` : p.dest);
  return `usage: ${spec.prog} ${parts.join(' ')}\n`;
}

/** --help text; `extra` is appended (pgark's own version and notes). */
export function helpText(spec: CommandSpec, extra = ''): string {
  const lines = [usage(spec), spec.description, '', 'positional arguments:'];
  for (const p of spec.positionals) lines.push(`  ${p.dest.padEnd(28)}${p.help}`);
  lines.push('', 'options:');
  for (const o of spec.options) {
    const names = o.flags.map((f) => (o.action === 'value' || o.action === 'append' || o.action === 'list' ? `${f} ${metavarOf(o)}` : f)).join(', ');
    lines.push(names.length < 28 ? `  ${names.padEnd(28)}${o.help}` : `  ${names}\n  ${''.padEnd(28)}${o.help}`);
  }
  return lines.join('\n') + '\n' + extra;
}

interface Match {
  option: OptionDef;
  flag: string;
  /** Text after '=' or after a short flag's letter. */
  attached?: string;
}

/** Resolves an argument that starts with '-' to an option, as argparse's _parse_optional does; undefined = a positional. */
function matchOption(spec: CommandSpec, arg: string): Match | undefined {
  const exact = spec.options.find((o) => o.flags.includes(arg));
  if (exact) return { option: exact, flag: arg };
  if (arg.length === 1) return undefined;
  if (arg.startsWith('--')) {
    const eq = arg.indexOf('=');
    const head = eq >= 0 ? arg.slice(0, eq) : arg;
    const attached = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const byName = spec.options.find((o) => o.flags.includes(head));
    if (byName) return { option: byName, flag: head, attached };
    // Unique prefixes of long options (argparse's allow_abbrev, on by default).
    const candidates = spec.options.flatMap((o) => o.flags.filter((f) => f.startsWith('--') && f.startsWith(head)).map((flag) => ({ option: o, flag })));
    if (candidates.length > 1) {
      throw new ArgError(`ambiguous option: ${head} could match ${candidates.map((c) => c.flag).join(', ')}`);
    }
    if (candidates.length === 1) return { ...candidates[0], attached };
  } else {
    // -xVALUE or a cluster of single-letter flags (-vv): resolved letter by letter by the caller.
    const short = spec.options.find((o) => o.flags.includes(arg.slice(0, 2)));
    if (short) return { option: short, flag: arg.slice(0, 2), attached: arg.slice(2) };
  }
  if (NEGATIVE_NUMBER.test(arg)) return undefined;
  // An element with a space was meant as a positional (argparse's rule), which then does not fit.
  if (arg.includes(' ')) return undefined;
  throw new UnknownOption(arg);
}

class UnknownOption extends ArgError {
  constructor(readonly arg: string) {
    super(`unrecognized arguments: ${arg}`);
  }
}

function convert(o: OptionDef, text: string): string | number {
  if (o.choices && !o.choices.includes(text)) {
    throw new ArgError(`argument ${optionName(o)}: invalid choice: '${text}' (choose from ${o.choices.map((c) => `'${c}'`).join(', ')})`);
  }
  if (!o.type) return text;
  try {
    return o.type(text);
  } catch (err) {
    throw new ArgError(`argument ${optionName(o)}: ${(err as Error).message || `invalid value: '${text}'`}`);
  }
}

function looksLikeOption(spec: CommandSpec, arg: string): boolean {
  if (!arg.startsWith('-') || arg === '-') return false;
  if (NEGATIVE_NUMBER.test(arg) && !spec.options.some((o) => o.flags.some((f) => NEGATIVE_NUMBER.test(f)))) return false;
  if (arg.includes(' ') && !spec.options.some((o) => o.flags.includes(arg.split('=')[0]))) return false;
  return true;
}

/**
 * Parses argv (without the program name) against spec. `version` is printed for -V/--version,
 * `helpExtra` after the help text.
 */
export function parseArgv(spec: CommandSpec, argv: readonly string[], version: string, helpExtra = ''): ParseOutcome {
  try {
    return { kind: 'args', args: parse(spec, argv) };
  } catch (err) {
    if (err instanceof EarlyExit) return { kind: 'exit', code: 0, stdout: err.kind === 'help' ? helpText(spec, helpExtra) : `${spec.prog} ${version}\n` };
    if (err instanceof ArgError) return { kind: 'exit', code: ARGV_ERROR_EXIT, stderr: `${usage(spec)}${spec.prog}: error: ${err.message}\n` };
    throw err;
  }
}

class EarlyExit extends Error {
  constructor(readonly kind: 'help' | 'version') {
    super(kind);
  }
}

function parse(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const values: Record<string, ArgValue> = {};
  const given = new Set<string>();
  /** Per group: the option (by its flags) first seen with a value. */
  const groupSeen = new Map<string, OptionDef>();
  const positionals: string[] = [];
  const unrecognized: string[] = [];

  const record = (o: OptionDef, value: ArgValue) => {
    if (o.group) {
      const other = groupSeen.get(o.group);
      if (other && other !== o) throw new ArgError(`argument ${optionName(o)}: not allowed with argument ${optionName(other)}`);
      groupSeen.set(o.group, o);
    }
    values[o.dest] = value;
    given.delete(o.dest);
    given.add(o.dest);
  };

  let i = 0;
  let optionsEnded = false;
  while (i < argv.length) {
    const arg = argv[i++];
    if (optionsEnded || !looksLikeOption(spec, arg)) {
      if (!optionsEnded && arg === '--') {
        optionsEnded = true;
        continue;
      }
      positionals.push(arg);
      continue;
    }
    if (arg === '--') {
      optionsEnded = true;
      continue;
    }
    let found: Match | undefined;
    try {
      found = matchOption(spec, arg);
    } catch (err) {
      if (!(err instanceof UnknownOption)) throw err;
      unrecognized.push(arg);
      continue;
    }
    if (!found) {
      positionals.push(arg);
      continue;
    }
    let match: Match = found;
    // A short-flag cluster: -vv, -vq, -zv; the letter after a value-taking flag starts its value.
    for (;;) {
      const { option: o, flag, attached }: Match = match;
      const isShortCluster = !flag.startsWith('--') && attached !== undefined && attached !== '';
      switch (o.action) {
        case 'help':
          throw new EarlyExit('help');
        case 'version':
          throw new EarlyExit('version');
        case 'const':
        case 'count': {
          if (attached !== undefined && flag.startsWith('--')) throw new ArgError(`argument ${optionName(o)}: ignored explicit argument '${attached}'`);
          record(o, o.action === 'count' ? (typeof values[o.dest] === 'number' ? (values[o.dest] as number) + 1 : 1) : (o.constValue ?? true));
          if (isShortCluster) {
            const next: string = `-${attached}`;
            const nextOption: OptionDef | undefined = spec.options.find((x) => x.flags.includes(next.slice(0, 2)));
            if (!nextOption) throw new ArgError(`argument ${optionName(o)}: ignored explicit argument '${attached}'`);
            match = { option: nextOption, flag: next.slice(0, 2), attached: next.slice(2) };
            continue;
          }
          break;
        }
        case 'value':
        case 'append': {
          let text = attached !== undefined && attached !== '' ? attached : attached === '' && flag.startsWith('--') ? '' : undefined;
          if (text === undefined) {
            if (i >= argv.length || looksLikeOption(spec, argv[i])) throw new ArgError(`argument ${optionName(o)}: expected one argument`);
            text = argv[i++];
          }
          const v = convert(o, text);
          if (o.action === 'append') {
            const list = Array.isArray(values[o.dest]) ? (values[o.dest] as string[]) : [];
            record(o, [...list, String(v)]);
          } else {
            record(o, v);
          }
          break;
        }
        case 'list': {
          const items: string[] = [];
          if (attached !== undefined && (flag.startsWith('--') || attached !== '')) items.push(String(convert(o, attached)));
          else while (i < argv.length && !looksLikeOption(spec, argv[i]) && argv[i] !== '--') items.push(String(convert(o, argv[i++])));
          record(o, items);
          break;
        }
      }
      break;
    }
  }

  const want = spec.positionals;
  const required = want.filter((p) => !p.optional).length;
  // Left to right: a positional after an option fills the next free slot (contract §1.2 rule 1).
  positionals.slice(0, want.length).forEach((v, k) => (values[want[k].dest] = v));
  unrecognized.push(...positionals.slice(want.length));
  if (positionals.length < required) {
    const missing = want.slice(positionals.length).filter((p) => !p.optional);
    throw new ArgError(`the following arguments are required: ${missing.map((p) => p.dest).join(', ')}`);
  }
  for (const g of spec.requiredGroups ?? []) {
    if (!groupSeen.has(g)) {
      const members = spec.options.filter((o) => o.group === g).map(optionName);
      throw new ArgError(`one of the arguments ${members.join(' ')} is required`);
    }
  }
  if (unrecognized.length) throw new ArgError(`unrecognized arguments: ${unrecognized.join(' ')}`);
  return { values, given };
}

/**
 * One `key,value` tag argument read as Python's csv reader reads one line (delimiter ",", quote
 * '"', doubled quotes inside quotes): `"a,b",c` is the tag ("a,b", "c"). Undefined unless it gives
 * exactly two fields, which barman reports as "Invalid tag format" (exit 3).
 */
export function parseTag(text: string): [string, string] | undefined {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  let atStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === ',') {
      fields.push(field);
      field = '';
      atStart = true;
      continue;
    } else if (c === '"' && atStart) quoted = true;
    else field += c;
    atStart = false;
  }
  fields.push(field);
  return fields.length === 2 ? [fields[0], fields[1]] : undefined;
}

/** Tag arguments as a record (a later key replaces an earlier one); throws the argv error text on a bad tag. */
export function parseTags(items: readonly string[] | undefined): Record<string, string> | undefined {
  if (!items || items.length === 0) return undefined;
  const tags: Record<string, string> = {};
  for (const item of items) {
    const tag = parseTag(item);
    if (!tag) throw new Error(`Invalid tag format: ${item}`);
    tags[tag[0]] = tag[1];
  }
  return tags;
}
