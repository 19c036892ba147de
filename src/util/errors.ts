/**
 * Error classes shared by every command. The CLI maps them to exit codes:
 * UserError (bad input, bad manifest, failed pre-check) -> 2 unless it says otherwise,
 * anything else -> 1. Messages must never contain secret values.
 */
export class PgarkError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly hint?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Invalid input from the user: flags, manifests, environment. Nothing has been changed when it is thrown. */
export class UserError extends PgarkError {
  constructor(message: string, hint?: string, exitCode = 2) {
    super(message, exitCode, hint);
  }
}

/** Where in a manifest a problem is. */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

/** One problem found in a manifest; a ConfigError carries all of them, not only the first. */
export interface ManifestIssue {
  position?: SourcePosition;
  /** Field path, e.g. spec.backup.barmanObjectStore.wal.compression */
  path: string;
  message: string;
  expected?: string;
  hint?: string;
}

export class ConfigError extends UserError {
  constructor(readonly issues: ManifestIssue[]) {
    super(issues.map(formatIssue).join('\n'));
  }
}

export function formatIssue(i: ManifestIssue): string {
  const where = i.position ? `${i.position.file}:${i.position.line}:${i.position.column}: ` : '';
  let s = `${where}${i.path ? i.path + ': ' : ''}${i.message}`;
  if (i.expected) s += ` (expected ${i.expected})`;
  if (i.hint) s += `\n  hint: ${i.hint}`;
  return s;
}

/** A requested object or file is absent; wal-restore turns this into PostgreSQL's "not found" exit. */
export class NotFoundError extends PgarkError {
  constructor(message: string) {
    super(message, 1);
  }
}
