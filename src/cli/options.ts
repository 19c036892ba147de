/** commander definitions made from the option table (src/util/options.ts). */
import { Option, type Command } from 'commander';
import { COMMAND_OPTIONS, OPTIONS, flagNames, pgarkVariables, type CommandName, type OptionSpec } from '../util/options.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Adds the options `command` takes to `cmd`, in the table's order (the order --help shows). */
export function withOptions(cmd: Command, command: CommandName): Command {
  for (const name of COMMAND_OPTIONS[command]) {
    const spec: OptionSpec = OPTIONS[name];
    const option = new Option(spec.flags!, spec.description);
    if (spec.type.kind === 'list') option.argParser(collect).default([]);
    else if (spec.default !== undefined) option.default(spec.default);
    if (spec.hidden) option.hideHelp();
    cmd.addOption(option);
  }
  return cmd;
}

const NAME_WIDTH = 31;
const LINE_WIDTH = 80;

/** `  NAME  text` with the text wrapped under itself, as commander lays out options. */
function helpRow(name: string, text: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && 2 + NAME_WIDTH + line.length + 1 + word.length > LINE_WIDTH) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.map((l, i) => `  ${(i === 0 ? name : '').padEnd(NAME_WIDTH)}${l}`).join('\n');
}

/** The PGARK_* variables, for the end of `pgark --help`. */
export function environmentHelp(): string {
  const rows = pgarkVariables().map(({ env, spec }) => helpRow(env, spec.flags ? `default of ${flagNames(spec).long}` : spec.description));
  return `\nEnvironment (docs/options.md has every option and variable):\n${rows.join('\n')}\n`;
}
