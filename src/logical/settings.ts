/**
 * Reading settings from environment variables and flags with every problem reported at once:
 * each problem names the variable (or flag), what it is for and what was expected, never its value
 * when the variable holds a secret.
 */
import { ConfigError, type ManifestIssue } from '../util/errors.js';

export class IssueList {
  readonly issues: ManifestIssue[] = [];

  missing(name: string, purpose: string, hint?: string): void {
    this.issues.push({ path: name, message: `missing: ${purpose}`, hint });
  }

  invalid(name: string, purpose: string, expected: string, shown?: string, hint?: string): void {
    this.issues.push({ path: name, message: `invalid${shown !== undefined ? ` value "${shown}"` : ''}: ${purpose}`, expected, hint });
  }

  /** Throws a ConfigError (exit 2) listing every problem, when there is any. */
  throwIfAny(headline: string): void {
    if (this.issues.length === 0) return;
    const err = new ConfigError(this.issues);
    err.message = `${headline} (${this.issues.length} problem${this.issues.length === 1 ? '' : 's'}):\n${err.message
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n')}`;
    throw err;
  }
}

/** A trimmed non-empty value, or undefined. */
export function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

export function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

export function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}
