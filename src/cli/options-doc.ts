/** docs/options.md, written from the option table by `npm run docs:options` (scripts/docs-options.mjs). */
import { COMMAND_OPTIONS, OPTIONS, commandsTaking, expected, flagNames, pgarkVariables, type CommandName, type OptionName, type OptionSpec } from '../util/options.js';

const cell = (text: string) => text.replaceAll('|', '\\|');

function typeOf(spec: OptionSpec, of: 'flag' | 'variable'): string {
  if (spec.type.kind === 'bool' && of === 'flag') return 'flag';
  // A variable names one manifest; only the flag repeats.
  if (spec.type.kind === 'list') return of === 'flag' ? 'list' : 'string';
  return spec.type.kind === 'string' ? 'string' : expected(spec.type);
}

function optionRow(name: OptionName): string {
  const spec: OptionSpec = OPTIONS[name];
  const env = spec.env ? `\`${spec.env}\`` : '';
  const dflt = spec.default === undefined ? '' : `\`${spec.default}\``;
  const hidden = spec.hidden ? ' (internal, not in --help)' : '';
  return `| \`${cell(spec.flags!)}\` | ${env} | ${cell(typeOf(spec, 'flag'))} | ${dflt} | ${cell(spec.description)}${hidden} |`;
}

export function optionsDoc(): string {
  const out = [
    '# Options and environment variables',
    '',
    '<!-- Written by `npm run docs:options` from src/util/options.ts; edit the table there, not this file. -->',
    '',
    'A flag wins over its variable. An empty text or 1/0 variable counts as unset; an empty number or choice is',
    'refused. pgark checks every `PGARK_*` variable when a command starts and refuses a value its type does not',
    'allow (exit 2, naming the variable and what it expects), before it reads a manifest or touches a store.',
    '',
    '## Environment variables',
    '',
    '| Variable | Type | Default | Read by | Meaning |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const { env, name, spec } of pgarkVariables()) {
    const readBy = spec.readBy ?? commandsTaking(name).join(', ');
    const meaning = spec.flags ? `the default of \`${flagNames(spec).long}\`: ${spec.description}` : spec.description;
    const dflt = spec.default === undefined || spec.flags ? '' : `\`${spec.default}\``;
    out.push(`| \`${env}\` | ${cell(typeOf(spec, 'variable'))} | ${dflt} | ${cell(readBy)} | ${cell(meaning)} |`);
  }
  out.push('', 'The libpq variables `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE` and `PGDATA` are the defaults of');
  out.push('the `--pg*` flags below; the `LOGICAL_BACKUP_*` and `SCOPE` variables are described in docs/logical-backups.md.');
  for (const command of Object.keys(COMMAND_OPTIONS) as CommandName[]) {
    out.push('', `## pgark ${command}`, '', '| Flag | Variable | Type | Default | Meaning |', '| --- | --- | --- | --- | --- |');
    for (const name of COMMAND_OPTIONS[command]) out.push(optionRow(name));
  }
  return `${out.join('\n')}\n`;
}
