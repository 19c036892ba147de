/**
 * How many backups retention keeps at least, besides the recovery window: the Cluster annotation
 * pgark.io/retention-redundancy and the plugin parameter retentionRedundancy (barman's
 * REDUNDANCY n / minimum_redundancy). One reading for the manifest checks, the CLI and the plugin.
 */
import { UserError } from '../util/errors.js';

export const RETENTION_REDUNDANCY_ANNOTATION = 'pgark.io/retention-redundancy';
export const RETENTION_REDUNDANCY_EXPECTED = 'a whole number of backups, at least 1, as a string (e.g. "3")';

/** Why `value` is not a redundancy, or undefined when it is one. */
export function redundancyProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `expected a string, got ${value === null ? 'nothing' : typeof value}`;
  // 0 would let retention delete every backup: barman accepts REDUNDANCY 0, pgark does not.
  if (!/^[1-9][0-9]{0,5}$/.test(value.trim())) return `"${value}" is not a number of backups`;
  return undefined;
}

/** The redundancy `value` names (undefined when unset); `where` names its source in the error. */
export function parseRetentionRedundancy(value: string | undefined, where: string): number | undefined {
  if (value === undefined) return undefined;
  const problem = redundancyProblem(value);
  if (problem) throw new UserError(`${where}: ${problem}`, `expected ${RETENTION_REDUNDANCY_EXPECTED}`);
  return Number(value.trim());
}
