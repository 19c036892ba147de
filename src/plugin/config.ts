/**
 * What is specific to CNPG-I requests on the way to an object store: the Cluster JSON CNPG sends
 * (read leniently: only the fields the plugin needs are checked, so fields of newer CNPG versions
 * pass) and ObjectStore documents from an ObjectStoreSource (the -f manifests, or the Kubernetes
 * API), validated and resolved into config's ResolvedObjectStore. Which ObjectStore and serverName
 * a Cluster's plugin entries mean is config's (plugin-form.ts), shared with the CLI.
 */
import { z } from 'zod';
import { findObjectStore, objectStoreSpec, resolveStoreSpec, type ConfigContext } from '../config/index.js';
import type { StoreRef } from '../config/plugin-form.js';
import type { ManifestSet, ObjectStore, ResolvedObjectStore } from '../config/types.js';
import { validateDocument } from '../config/validate.js';
import { ConfigError, UserError } from '../util/errors.js';
import { InvalidRequestError } from './calls.js';

/** Where ObjectStore resources are read: a raw document (as the API returns it), or undefined when there is none. */
export interface ObjectStoreSource {
  read(name: string, namespace: string | undefined): Promise<unknown | undefined>;
}

const stringMap = z.record(z.string(), z.string());
const pluginEntry = z.looseObject({
  name: z.string().min(1),
  enabled: z.boolean().optional(),
  isWALArchiver: z.boolean().optional(),
  parameters: stringMap.optional(),
});
const clusterView = z.looseObject({
  metadata: z.looseObject({ name: z.string().min(1), namespace: z.string().optional(), annotations: stringMap.optional() }),
  spec: z
    .looseObject({
      plugins: z.array(pluginEntry).optional(),
      backup: z.looseObject({ barmanObjectStore: z.unknown().optional() }).optional(),
      bootstrap: z.looseObject({ recovery: z.looseObject({ source: z.string().optional() }).optional() }).optional(),
      replica: z.looseObject({ enabled: z.boolean().optional(), source: z.string().optional() }).optional(),
      externalClusters: z
        .array(z.looseObject({ name: z.string().min(1), plugin: pluginEntry.optional() }))
        .optional(),
    })
    .default({}),
});

/** The parts of a Cluster the plugin acts on. */
export type PluginCluster = z.output<typeof clusterView>;

/** The Cluster of a request (its cluster_definition JSON) or of a -f manifest; InvalidRequestError names the bad field. */
export function readCluster(definition: Buffer | object): PluginCluster {
  let value: unknown = definition;
  if (Buffer.isBuffer(definition)) {
    if (definition.length === 0) throw new InvalidRequestError('cluster_definition is empty', 'CNPG sends the Cluster as JSON in every request');
    try {
      value = JSON.parse(definition.toString('utf8'));
    } catch (err) {
      throw new InvalidRequestError(`cluster_definition is not JSON: ${(err as Error).message}`);
    }
  }
  const r = clusterView.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
  throw new InvalidRequestError(`cluster_definition is not a usable Cluster: ${problems.join('; ')}`);
}

/** ObjectStores from the -f manifests; one without a namespace matches any. */
export function manifestObjectStoreSource(set: ManifestSet): ObjectStoreSource {
  return {
    async read(name, namespace) {
      return findObjectStore(set, name, namespace);
    },
  };
}

function isLoadedObjectStore(doc: unknown): doc is ObjectStore {
  return typeof doc === 'object' && doc !== null && 'origin' in doc && (doc as { kind?: unknown }).kind === 'ObjectStore';
}

/**
 * Resolves StoreRefs to ResolvedObjectStores. A document from the source is validated once per
 * (namespace, name, resourceVersion); -f documents were validated when loaded (with file:line:col).
 * Secrets are resolved on every call: WalTargetCache calls only every 30 s, and after the store
 * rejected a credential, so a rotated Secret is picked up without a restart.
 */
export class PluginConfig {
  private readonly parsed = new Map<string, { resourceVersion: string; store: ObjectStore }>();

  constructor(
    private readonly source: ObjectStoreSource,
    readonly ctx: ConfigContext,
  ) {}

  async objectStore(name: string, namespace: string | undefined): Promise<ObjectStore> {
    const doc = await this.source.read(name, namespace);
    const where = `ObjectStore ${namespace ? `${namespace}/` : ''}${name}`;
    if (doc === undefined) {
      throw new UserError(`${where} not found`, 'create the ObjectStore (barmancloud.cnpg.io/v1) in the Cluster\'s namespace, or pass it with -f');
    }
    if (isLoadedObjectStore(doc)) return doc;
    const key = `${namespace ?? ''}/${name}`;
    const rv = (doc as { metadata?: { resourceVersion?: unknown } }).metadata?.resourceVersion;
    const cached = this.parsed.get(key);
    if (typeof rv === 'string' && cached?.resourceVersion === rv) return cached.store;
    const position = { file: where, line: 1, column: 1 };
    const r = await validateDocument({ file: where, value: doc, position, locate: () => position });
    if (r.issues.length > 0 || r.manifest?.kind !== 'ObjectStore') {
      // An API document has no file:line:column; the issue names the resource and the field instead.
      const issues = r.issues.length ? r.issues : [{ path: 'kind', message: 'not an ObjectStore', expected: 'kind: ObjectStore' }];
      throw new ConfigError(issues.map((i) => ({ ...i, position: undefined, path: `${where} ${i.path}` })));
    }
    if (typeof rv === 'string') this.parsed.set(key, { resourceVersion: rv, store: r.manifest });
    return r.manifest;
  }

  async resolve(ref: StoreRef): Promise<ResolvedObjectStore> {
    return resolveStoreSpec(this.ctx, objectStoreSpec(await this.objectStore(ref.objectName, ref.namespace), ref));
  }
}
