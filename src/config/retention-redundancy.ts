/**
 * How many backups retention keeps at least, besides the recovery window: the Cluster annotation
 * pgark.io/retention-redundancy and the plugin parameter retentionRedundancy (barman's
 * REDUNDANCY n / minimum_redundancy). One reading for the manifest checks, the CLI and the plugin.
 */
import { UserError } from '../util/errors.js';
import { enabledEntries, servedTargetEntry, type PluginFormCluster } from './plugin-form.js';

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

/**
 * A Cluster's redundancy: the retentionRedundancy parameter of its plugin entry (`pluginName`,
 * else, without an in-tree store, the served entry the CLI reads), else its annotation.
 */
export function clusterRetentionRedundancy(cluster: PluginFormCluster, pluginName?: string): number | undefined {
  const entry = pluginName
    ? enabledEntries(cluster).find((p) => p.name === pluginName)
    : cluster.spec.backup?.barmanObjectStore == null
      ? servedTargetEntry(cluster)
      : undefined;
  const fromParameter = entry?.parameters?.retentionRedundancy;
  if (entry && fromParameter !== undefined) {
    return parseRetentionRedundancy(fromParameter, `parameter retentionRedundancy of the spec.plugins entry "${entry.name}" of Cluster "${cluster.metadata.name}"`);
  }
  const where = `Cluster "${cluster.metadata.name}" annotation ${RETENTION_REDUNDANCY_ANNOTATION}`;
  return parseRetentionRedundancy(cluster.metadata.annotations?.[RETENTION_REDUNDANCY_ANNOTATION], where);
}
