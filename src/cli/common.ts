/** Options and error handling shared by every command. */
import type { Command } from 'commander';
import { PgarkError } from '../util/errors.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export interface ConfigOptions {
  file: string[];
  secretsDir?: string;
  json?: boolean;
}

/** -f FILE|DIR (repeatable; PGARK_CONFIG when absent), --secrets-dir, --json. */
export function withConfigOptions(cmd: Command): Command {
  return cmd
    .option('-f, --file <path>', 'CNPG manifest file or directory of *.yaml (repeatable; default $PGARK_CONFIG)', collect, [])
    .option('--secrets-dir <dir>', 'Kubernetes-style mounted secrets: DIR/<secret name>/<key>')
    .option('--json', 'machine-readable output');
}

/** libpq-style connection flags; the PG* environment variables are the defaults. */
export function withPgOptions(cmd: Command): Command {
  return cmd
    .option('--pghost <host>', 'PostgreSQL host or socket directory (default $PGHOST)')
    .option('--pgport <port>', 'PostgreSQL port (default $PGPORT or 5432)')
    .option('--pguser <user>', 'PostgreSQL user (default $PGUSER)')
    .option('--pgpassword <password>', 'PostgreSQL password (prefer $PGPASSWORD)')
    .option('--pgdatabase <db>', 'PostgreSQL database (default $PGDATABASE or postgres)')
    .option('--pgdata <dir>', 'local data directory (default $PGDATA)');
}

export function configFiles(opts: ConfigOptions): string[] {
  if (opts.file.length > 0) return opts.file;
  return process.env.PGARK_CONFIG ? [process.env.PGARK_CONFIG] : [];
}

/**
 * Runs a command body and turns errors into a message on stderr and an exit code:
 * PgarkError -> its exitCode (2 for bad input), anything else -> 1. Stack traces only with PGARK_DEBUG.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      reportError(err);
    }
  };
}

export function reportError(err: unknown): void {
  if (err instanceof PgarkError) {
    process.stderr.write(`pgark: ${err.message}\n`);
    if (err.hint) process.stderr.write(`  hint: ${err.hint}\n`);
    process.exitCode = err.exitCode;
  } else {
    const e = err as Error;
    process.stderr.write(`pgark: ${e?.message ?? String(err)}\n`);
    process.exitCode = 1;
  }
  if (process.env.PGARK_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
}
