/**
 * What every barman-cloud drop-in command shares: the parsed invocation it is given, barman's
 * log format on stderr, the store arguments, barman's exit classes, the key of a drop-in's
 * resident WAL daemon, and the connectivity test of -t/--test. Loaded on the archive_command
 * path: node builtins and light modules only; storage is imported when a command needs it.
 */
import { createHash } from 'node:crypto';
import { BARMAN_CREDENTIAL_ENV, type BarmanAzureCredential, type BarmanProvider, type BarmanStoreArgs } from '../../config/barman-env.js';
import type { ObjectStore } from '../../storage/types.js';
import type { WalReply } from '../../wal/protocol.js';

export type BarmanValue = string | number | boolean | string[] | undefined;

/** One run of a drop-in, as the cli layer parsed it. */
export interface BarmanInvocation {
  /** The name it runs as (barman-cloud-wal-archive, ...). */
  prog: string;
  /** argv after the program name, as given. */
  argv: readonly string[];
  /** Parsed values by dest (specs.ts). */
  values: Record<string, BarmanValue>;
  /** --tags/--tag and --history-tags/--history-tag, read as barman reads them. */
  tags?: Record<string, string>;
  historyTags?: Record<string, string>;
  log: BarmanLog;
}

/** barman's exit classes (contract §1.6). */
export const EXIT = { ok: 0, operation: 1, network: 2, cli: 3, general: 4 } as const;

export interface BarmanLog {
  error(message: string): void;
  warning(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

/** CloudNativePG reads our output line by line with a 1 MiB limit: longer lines break its pipe. */
const MAX_LINE = 64 * 1024;

function timestamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())},${p(d.getMilliseconds(), 3)}`;
}

/**
 * barman's logging: `%(asctime)s [%(process)s] %(levelname)s: %(message)s` on stderr, level
 * WARNING lowered by one step per -v and raised per -q. One line per message, always.
 */
export function barmanLog(verbose: number, quiet: number, write: (line: string) => void = (l) => process.stderr.write(l)): BarmanLog {
  const threshold = Math.max(30 - (verbose - quiet) * 10, 10);
  const at = (level: number, name: string) => (message: string) => {
    if (level < threshold) return;
    const text = message.replace(/\s*\n\s*/g, ' ');
    write(`${timestamp(new Date())} [${process.pid}] ${name}: ${text.length > MAX_LINE ? `${text.slice(0, MAX_LINE)}...` : text}\n`);
  };
  return { error: at(40, 'ERROR'), warning: at(30, 'WARNING'), info: at(20, 'INFO'), debug: at(10, 'DEBUG') };
}

const str = (v: BarmanValue) => (typeof v === 'string' ? v : undefined);

/** The store arguments of an invocation; `urlDest` is source_url or destination_url. */
export function storeArgs(values: Record<string, BarmanValue>, urlDest: 'source_url' | 'destination_url'): BarmanStoreArgs {
  return {
    destinationUrl: str(values[urlDest])!,
    serverName: str(values.server_name)!,
    cloudProvider: str(values.cloudProvider) as BarmanProvider | undefined,
    endpointUrl: str(values.endpointUrl),
    awsProfile: str(values.awsProfile),
    azureCredential: str(values.azureCredential) as BarmanAzureCredential | undefined,
  };
}

/**
 * The name of the resident WAL daemon (WalRuntime.instance) of a drop-in invocation: a hash of its
 * argv without the WAL operands and of the store variables' values. bin/pgark computes the same
 * (NUL after each element, `NAME=value` for each variable, sha256, first 32 hex digits) to find
 * the daemon's archive markers without starting Node; test/barman-cloud/wal.test.ts holds both to it.
 */
export function daemonInstance(argvWithoutWal: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  const h = createHash('sha256');
  for (const a of argvWithoutWal) h.update(`${a}\0`);
  for (const name of BARMAN_CREDENTIAL_ENV) h.update(`${name}=${env[name] ?? ''}\0`);
  return `barman-${h.digest('hex').slice(0, 32)}`;
}

/** The message of a failed WAL reply, with its hint, as one line. */
export function replyMessage(reply: Extract<WalReply, { ok: false }>): string {
  return reply.hint ? `${reply.message} (hint: ${reply.hint})` : reply.message;
}

/** An exit class for an error thrown while setting up (store resolution, connectivity). */
export function exitForError(err: unknown): number {
  const e = err as { exitCode?: number; kind?: string };
  if (e.kind === 'unreachable') return EXIT.network;
  if (e.exitCode === 2 || e.exitCode === 3) return EXIT.cli;
  return EXIT.general;
}

/**
 * barman's connectivity test: reaching the endpoint is what counts (a missing bucket is reachable,
 * as botocore's head_bucket 404 is); throws the StorageError otherwise. Returns whether the bucket exists.
 */
export async function testConnectivity(store: ObjectStore, serverName: string): Promise<boolean> {
  const { StorageError } = await import('../../storage/errors.js');
  try {
    for await (const entry of store.list(`${serverName}/`, { delimiter: '/' })) {
      void entry;
      break;
    }
    return true;
  } catch (err) {
    if (err instanceof StorageError && err.kind === 'not-found-bucket') return false;
    throw err;
  }
}
