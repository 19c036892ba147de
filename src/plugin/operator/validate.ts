/**
 * The admission checks CNPG asks the plugin for (Operator.ValidateClusterCreate/Change): this
 * plugin's parameters in the Cluster, and each ObjectStore they name, run through pgark's own
 * validator and Secret resolution (PluginConfig.resolve, as the sidecar will run them). Each
 * mistake is one ValidationError: the Cluster field it stems from, the value, and a message with
 * the ObjectStore field and a hint. Messages name Secrets and keys, never a value.
 */
import { ConfigError, UserError, formatIssue } from '../../util/errors.js';
import { pluginRules } from '../../config/rules.js';
import type { PluginCluster, PluginConfig } from '../config.js';
import { pluginReferences, type StoreReference } from './cluster-refs.js';

export interface ValidationError {
  pathComponents: string[];
  value: string;
  message: string;
}

export async function validateCluster(cluster: PluginCluster, pluginName: string, stores: PluginConfig): Promise<ValidationError[]> {
  // The same rules pgark check applies to a -f Cluster.
  const errors: ValidationError[] = pluginRules(cluster).map((r) => ({
    pathComponents: r.path.map(String),
    value: r.path[r.path.length - 1] === 'isWALArchiver' ? 'true' : '',
    message: `${r.message}${r.hint ? `; hint: ${r.hint}` : ''}`,
  }));
  const refs = pluginReferences(cluster, pluginName);
  const checked = new Set<string>();
  for (const ref of [refs.target, refs.recovery, refs.replicaSource]) {
    if (!ref) continue;
    if (!ref.objectStore) {
      errors.push({
        pathComponents: [...ref.path, 'barmanObjectName'],
        value: '',
        message: `parameters.barmanObjectName is required; hint: name the ObjectStore (barmancloud.cnpg.io/v1) in namespace ${refs.namespace} that holds this cluster's backups`,
      });
      continue;
    }
    if (checked.has(ref.objectStore)) continue;
    checked.add(ref.objectStore);
    errors.push(...(await storeErrors(stores, ref, refs.namespace)));
  }
  return errors;
}

/** Everything pgark's validator and Secret resolution find wrong with the store a reference names. */
async function storeErrors(stores: PluginConfig, ref: StoreReference, namespace: string): Promise<ValidationError[]> {
  const at = { pathComponents: [...ref.path, 'barmanObjectName'], value: ref.objectStore! };
  try {
    await stores.resolve({ namespace, objectName: ref.objectStore!, serverName: ref.serverName, skipEmptyCheck: false });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => ({ ...at, message: formatIssue(i).replace('\n  hint:', '; hint:') }));
    if (err instanceof UserError) return [{ ...at, message: `${err.message}${err.hint ? `; hint: ${err.hint}` : ''}` }];
    throw err;
  }
}
