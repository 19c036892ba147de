/**
 * What barman-cloud-backup, -restore, -backup-list, -show, -delete and -keep share: the store a
 * barman-cloud argv names (opened for one run and closed), the catalog read the way
 * barman's CloudBackupCatalog reads it, and barman's exit codes for what goes wrong.
 */
import type { ResolvedObjectStore } from '../../config/types.js';
import { applyAwsProfile, BARMAN_CONFIG_EXIT, resolveBarmanStore, type BarmanStore } from '../../config/barman-env.js';
import { EXIT, storeArgs, type BarmanInvocation, type BarmanLog } from './common.js';
import { connectivityOnly } from './connectivity.js';
import { openObjectStore } from '../../storage/open.js';
import type { ObjectStore } from '../../storage/types.js';
import { StorageError } from '../../storage/errors.js';
import { findBackup, listBackups, type Catalog } from '../../catalog/catalog.js';
import type { BackupInfo } from '../../catalog/backup-info.js';
import { BACKUP_ID_RE } from '../../catalog/layout.js';
import { NotFoundError, PgarkError, UserError } from '../../util/errors.js';

/** A failure whose barman exit code is decided where it is raised. */
export class BarmanExit extends PgarkError {
  constructor(message: string, code: number, hint?: string) {
    super(message, code, hint);
  }
}

/**
 * The barman exit code of an error: an unreachable store is a network error (2), a missing object
 * or a refused operation an operation error (1), anything else general (4). CNPG retries a restore
 * on 2 and 4 after wiping PGDATA, and gives up on 1 and 3.
 */
export function barmanExitCode(err: unknown): number {
  if (err instanceof BarmanExit) return err.exitCode;
  if (err instanceof StorageError) return err.kind === 'unreachable' ? EXIT.network : EXIT.general;
  if (err instanceof UserError && err.exitCode === BARMAN_CONFIG_EXIT) return EXIT.cli;
  if (err instanceof NotFoundError || err instanceof UserError) return EXIT.operation;
  return EXIT.general;
}

/** Runs `fn` with the store open; closes it whatever happens. */
export async function withStore<T>(target: ResolvedObjectStore, fn: (store: ObjectStore) => Promise<T>): Promise<T> {
  const store = await openObjectStore(target);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * The catalog, with barman's warning for each backup.info it cannot read: barman lists the
 * others and skips those (list, show); delete refuses to go on (see backup-delete.ts).
 */
export async function readCatalog(store: ObjectStore, serverName: string, log: BarmanLog): Promise<Catalog> {
  const catalog = await listBackups(store, serverName);
  for (const u of catalog.unreadable) log.warning(`Skipping unreadable backup.info of backup ${u.backupId}: ${u.error}`);
  return catalog;
}

/**
 * JSON text as Python's json.dumps writes it (", " and ": " separators, non-ASCII escaped), so
 * what the callers parse is byte-for-byte the shape barman prints.
 */
export function pythonJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${pythonJson(k)}: ${pythonJson(v)}`).join(', ')}}`;
}

/**
 * The backup an argv names: an id, a shortcut (latest, oldest, ...) or a backup_name. barman
 * exits 1 for an id without backup.info and 4 for an unknown or ambiguous name (a ValueError);
 * `unknownName` overrides the latter where a caller reads "not found" as final (restore).
 */
export function resolveBackup(catalog: Catalog, ref: string, unknownName: number = EXIT.general): BackupInfo {
  try {
    return findBackup(catalog, ref);
  } catch (err) {
    if (!(err instanceof PgarkError)) throw err;
    const code = BACKUP_ID_RE.test(ref) ? EXIT.operation : unknownName;
    throw new BarmanExit(BACKUP_ID_RE.test(ref) ? `Backup ${ref} for server ${catalog.serverName} does not exist` : err.message, code, err.hint);
  }
}

/** Where a command's output goes: messages to `log` (stderr), the command's result to `out` (stdout). */
export interface CommandIo {
  log: BarmanLog;
  out: (text: string) => void;
}

/**
 * The store barman's argv names as the domain code takes it: a ResolvedObjectStore whose
 * configuration is only what argv and environment say (no manifest is involved).
 */
export function storeTarget(store: BarmanStore): ResolvedObjectStore {
  return { ...store.options, serverName: store.serverName, credentialSource: store.description, config: { destinationPath: store.options.destinationPath } };
}

export type ArgValues = BarmanInvocation['values'];

/**
 * The run of one of the six commands, as b1's dispatcher calls it: -t/--test stops after the
 * connectivity test; otherwise the store is resolved from argv and environment and `fn` runs, its
 * output on stdout, a failure logged with its barman exit code.
 */
export async function runCommand(
  inv: BarmanInvocation,
  urlDest: 'source_url' | 'destination_url',
  fn: (target: ResolvedObjectStore, io: CommandIo) => Promise<void>,
  out: (text: string) => void = (t) => process.stdout.write(t),
): Promise<number> {
  const args = storeArgs(inv.values, urlDest);
  if (inv.values.test) return connectivityOnly(args, inv.log);
  try {
    const store = resolveBarmanStore(args);
    applyAwsProfile(store);
    await fn(storeTarget(store), { log: inv.log, out });
    return EXIT.ok;
  } catch (err) {
    inv.log.error(`${inv.prog} exception: ${(err as Error).message}${(err as PgarkError).hint ? ` (hint: ${(err as PgarkError).hint})` : ''}`);
    return barmanExitCode(err);
  }
}

/** A parsed argv value as text (undefined when absent). */
export function textArg(value: ArgValues[string]): string | undefined {
  return value === undefined || value === false ? undefined : String(value);
}

const SIZE_PREFIXES = 'KMGTPEZY';

/**
 * barman's check_size: a plain integer is bytes; "<n><prefix>B" multiplies by 1024 per prefix
 * step, and "<n><prefix>iB" by 1000 (barman has the two bases that way round).
 */
export function parseBarmanSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([KMGTPEZY])(I)?)?(B)?\s*$/i.exec(text);
  if (!m || (m[2] && !m[4])) throw new BarmanExit(`invalid size value: '${text}'`, EXIT.cli);
  const base = m[3] ? 1000 : 1024;
  const power = m[2] ? SIZE_PREFIXES.indexOf(m[2].toUpperCase()) + 1 : 0;
  return Math.floor(Number(m[1]) * base ** power);
}
