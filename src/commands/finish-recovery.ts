/**
 * recovery_end_command's own arguments (`pgark restore --finish-recovery`), read without commander
 * or the manifests: pgark restore wrote everything the finish needs on its command line
 * (--archive-after says whether the cluster archives). Undefined for a command line without it
 * (written by an older pgark) or with anything else: the full CLI reads those.
 */
import { parseArgs } from 'node:util';
import type { FinishOptions } from '../recovery/finish.js';
import { parseConfig } from '../wal/client.js';

/** The finish's arguments, or undefined when the full CLI must read them. */
export function finishArgs(args: string[]): FinishOptions | undefined {
  const options = parseConfig('restore');
  const { values, positionals, tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  const known = new Set(['file', 'secrets-dir', 'cluster', 'finish-recovery', 'pgdata', 'archive-after', 'archive-end']);
  if (positionals.length || tokens.some((t) => t.kind === 'option' && (!known.has(t.name) || (options[t.name].type === 'string' && t.value === undefined)))) return undefined;
  const text = (name: string) => values[name] as string | undefined;
  const after = text('archive-after');
  const pgdata = text('pgdata');
  if (values['finish-recovery'] !== true || !pgdata || (after !== 'on' && after !== 'off')) return undefined;
  const files = (values.file as string[] | undefined) ?? [];
  if (files.length === 0) return undefined;
  return { pgdata, ref: { files, secretsDir: text('secrets-dir') }, cluster: text('cluster'), archives: after === 'on', archiveEnd: text('archive-end') };
}

export { finishRecovery } from '../recovery/finish.js';
