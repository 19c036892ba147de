/**
 * `pgark migrate`: rewrites CNPG manifests for the pgark plugin and either prints them (stdout, for
 * `| kubectl apply -f -`; the summary goes to stderr) or writes them to -o DIR (summary on stdout).
 * Everything is checked before the first byte is written.
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { migrateManifests, type MigrateFrom, type MigrationSummary } from '../config/migrate.js';
import { UserError } from '../util/errors.js';

export interface MigrateCommandOptions {
  files: string[];
  output?: string;
  from: MigrateFrom;
  name: string;
}

export async function migrateCommand(opts: MigrateCommandOptions): Promise<void> {
  const result = await migrateManifests({ files: opts.files, from: opts.from, name: opts.name });
  if (!opts.output) {
    process.stdout.write(result.files.map((f) => f.text).join('---\n'));
    process.stderr.write(renderSummary(result.summary));
    return;
  }
  const dir = resolve(opts.output);
  const targets = result.files.map((f) => ({ ...f, target: join(dir, basename(f.source)) }));
  for (const t of targets) {
    if (resolve(t.source) === t.target) throw new UserError(`-o ${opts.output} would overwrite the input ${t.source}`, 'write the migrated manifests to another directory');
    if (existsSync(t.target)) throw new UserError(`${t.target} already exists`, 'choose an empty directory for -o, or remove the file');
  }
  if (new Set(targets.map((t) => t.target)).size !== targets.length) {
    throw new UserError('two input files have the same name', 'migrate them with separate -o directories');
  }
  mkdirSync(dir, { recursive: true });
  for (const t of targets) {
    // A file appears whole or not at all.
    const tmp = `${t.target}.tmp-${process.pid}`;
    writeFileSync(tmp, t.text);
    renameSync(tmp, t.target);
  }
  process.stdout.write(`${targets.map((t) => `wrote ${t.target}`).join('\n')}\n${renderSummary(result.summary)}`);
}

export function renderSummary(s: MigrationSummary): string {
  const section = (title: string, lines: string[], numbered = false) =>
    lines.length ? `${title}:\n${lines.map((l, i) => `  ${numbered ? `${i + 1}.` : '-'} ${l}`).join('\n')}\n` : '';
  return section('changed', s.changes) + section('next steps', s.steps, true) + section('notes', s.notes);
}
