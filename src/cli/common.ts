/** Error handling and the manifest list shared by every command. */
import { PgarkError } from '../util/errors.js';
import { checkEnvironment, setting } from '../util/options.js';

export interface ConfigOptions {
  file: string[];
  secretsDir?: string;
  json?: boolean;
}

export function configFiles(opts: ConfigOptions): string[] {
  if (opts.file.length > 0) return opts.file;
  const fromEnv = setting('file');
  return fromEnv ? [fromEnv] : [];
}

/**
 * Runs a command body and turns errors into a message on stderr and an exit code:
 * PgarkError -> its exitCode (2 for bad input), anything else -> 1. Stack traces only with PGARK_DEBUG=1.
 * The PGARK_* variables are checked first, so that a bad one stops the command before it does anything.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      checkEnvironment();
      await fn(...args);
    } catch (err) {
      reportError(err);
    }
  };
}

function debugEnabled(): boolean {
  try {
    return setting('debug');
  } catch {
    // The refusal of PGARK_DEBUG itself is being reported.
    return false;
  }
}

function reportError(err: unknown): void {
  if (err instanceof PgarkError) {
    process.stderr.write(`pgark: ${err.message}\n`);
    if (err.hint) process.stderr.write(`  hint: ${err.hint}\n`);
    process.exitCode = err.exitCode;
  } else {
    const e = err as Error;
    process.stderr.write(`pgark: ${e?.message ?? String(err)}\n`);
    process.exitCode = 1;
  }
  if (debugEnabled() && err instanceof Error) process.stderr.write(`${err.stack}\n`);
}
