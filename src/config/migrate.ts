/**
 * Rewriting CNPG manifests for the pgark CNPG-I plugin: in-tree `barmanObjectStore` blocks become
 * ObjectStore objects plus plugin references, or plugin-barman-cloud references become pgark's.
 * Works on the YAML documents themselves, so comments and the order of the user's fields survive.
 * Returns the new texts and a summary; writing and printing are the command's.
 */
import { readFileSync } from 'node:fs';
import { Document, LineCounter, isMap, isSeq, parseAllDocuments, visit, isAlias, type Node } from 'yaml';
import { ConfigError, PgarkError, UserError, type ManifestIssue } from '../util/errors.js';
import { safeDisplay } from '../storage/destination.js';
import { expandManifestPaths, parseText } from './source.js';
import { loadManifests } from './index.js';
import { validateDocument } from './validate.js';
import type { Backup, Cluster, ManifestSet, ScheduledBackup } from './types.js';
import { BARMAN_CLOUD_PLUGIN_NAME } from './plugin-form.js';

export const OBJECT_STORE_API_VERSION = 'barmancloud.cnpg.io/v1';

export type MigrateFrom = 'in-tree' | 'barman-cloud-plugin';

export interface MigrateOptions {
  files: string[];
  from: MigrateFrom;
  /** The plugin name to write (default pgark.io). */
  name: string;
}

export interface MigratedFile {
  /** The input file this text replaces. */
  source: string;
  text: string;
}

export interface MigrationSummary {
  /** One line per change made, in input order. */
  changes: string[];
  /** What the user must do, in order. */
  steps: string[];
  /** Things migrate left alone that need a look. */
  notes: string[];
}

export interface MigrationResult {
  files: MigratedFile[];
  summary: MigrationSummary;
}

/** CNPG-I plugin names are DNS-style and also the socket's file name (at most 63 characters). */
const PLUGIN_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

interface StoreRef {
  name: string;
  namespace?: string;
  /** The configuration's canonical JSON (the block minus serverName): equal text, same ObjectStore. */
  key: string;
  retentionPolicy?: string;
  /** The barmanObjectStore node the ObjectStore's configuration is copied from (comments included). */
  node: Node;
  /** The same block as plain data, for a block that uses aliases (which cannot move to another document). */
  plain: unknown;
  /** Input file of the Cluster that first needed it: the ObjectStore is written there, before the Cluster. */
  file: string;
  users: string[];
}

interface YamlFile {
  path: string;
  docs: Document.Parsed[];
}

/**
 * Loads and validates the manifests (bad input: ConfigError with file:line:col, nothing returned),
 * then rewrites them. Every output document is validated again before it is returned.
 */
export async function migrateManifests(opts: MigrateOptions): Promise<MigrationResult> {
  if (opts.name.length > 63 || !PLUGIN_NAME.test(opts.name)) {
    throw new UserError(`--name "${opts.name}" is not a plugin name`, 'a DNS-style name of at most 63 characters, e.g. pgark.io');
  }
  const set = await loadManifests(opts.files);
  const files = expandManifestPaths(opts.files).files.map(readYamlFile);
  const summary: MigrationSummary = { changes: [], steps: [], notes: [...(set.notes ?? [])] };
  const stores = opts.from === 'in-tree' ? migrateInTree(set, files, opts.name, summary) : renamePlugin(files, opts.name, summary);
  const out = files.map((f) => ({ source: f.path, text: render(f, stores) }));
  await checkOutput(out);
  return { files: out, summary };
}

function readYamlFile(path: string): YamlFile {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(readFileSync(path, 'utf8'), { lineCounter, uniqueKeys: true });
  return { path, docs: Array.isArray(docs) ? docs : [] };
}

type Manifest = Cluster | Backup | ScheduledBackup;

/** The YAML document a validated manifest came from (same file, kind, name and namespace). */
function documentOf(files: YamlFile[], m: Manifest): Document.Parsed {
  const file = files.find((f) => f.path === m.origin.file)!;
  const doc = file.docs.find(
    (d) => d.get('kind') === m.kind && d.getIn(['metadata', 'name']) === m.metadata.name && d.getIn(['metadata', 'namespace']) === m.metadata.namespace,
  );
  if (!doc) throw new PgarkError(`internal: ${m.kind} "${m.metadata.name}" not found again in ${m.origin.file}`);
  return doc;
}

function migrateInTree(set: ManifestSet, files: YamlFile[], pluginName: string, summary: MigrationSummary): StoreRef[] {
  const stores: StoreRef[] = [];
  const issues: ManifestIssue[] = [];
  const migrated = new Set<string>();
  const takenNames = new Set<string>();
  for (const f of files) for (const d of f.docs) if (d.get('kind') === 'ObjectStore') takenNames.add(`${d.getIn(['metadata', 'namespace']) ?? ''}/${d.getIn(['metadata', 'name'])}`);

  const storeFor = (cluster: Cluster, doc: Document.Parsed, path: (string | number)[], config: object, wanted: string, retentionPolicy: string | undefined, user: string): StoreRef => {
    const block = doc.getIn(path, true) as Node;
    const { serverName: _serverName, ...rest } = config as { serverName?: string };
    const key = canonical(rest);
    const namespace = cluster.metadata.namespace;
    const same = stores.find(
      (s) => s.key === key && s.namespace === namespace && (!retentionPolicy || !s.retentionPolicy || s.retentionPolicy === retentionPolicy),
    );
    if (same) {
      same.retentionPolicy ??= retentionPolicy;
      same.users.push(user);
      return same;
    }
    const name = uniqueName(objectName(wanted), namespace, takenNames);
    const ref: StoreRef = { name, namespace, key, retentionPolicy, node: block, plain: block.toJS(doc), file: cluster.origin.file, users: [user] };
    stores.push(ref);
    return ref;
  };

  for (const cluster of set.clusters) {
    const doc = documentOf(files, cluster);
    const cname = cluster.metadata.name;
    const own = cluster.spec.backup?.barmanObjectStore;
    const externals = (cluster.spec.externalClusters ?? []).map((e, i) => ({ e, i })).filter(({ e }) => e.barmanObjectStore);
    if (!own && externals.length === 0) continue;
    if (own) {
      // A WAL archiver plugin next to the in-tree store is refused on load already (CNPG's rule).
      const mine = (cluster.spec.plugins ?? []).findIndex((p) => p.name === pluginName);
      if (mine >= 0) {
        issues.push({
          position: cluster.origin.positionOf(`spec.plugins[${mine}].name`),
          path: `spec.plugins[${mine}].name`,
          message: `Cluster "${cname}" already lists plugin "${pluginName}" besides spec.backup.barmanObjectStore`,
          hint: 'a Cluster archives WAL through one path: remove one of them by hand, then run pgark migrate again',
        });
        continue;
      }
      const retention = cluster.spec.backup?.retentionPolicy;
      const serverName = own.serverName ?? cname;
      const ref = storeFor(cluster, doc, ['spec', 'backup', 'barmanObjectStore'], own, `${cname}-store`, retention, `Cluster ${cname}`);
      doc.deleteIn(['spec', 'backup', 'barmanObjectStore']);
      if (retention) doc.deleteIn(['spec', 'backup', 'retentionPolicy']);
      const backup = doc.getIn(['spec', 'backup']);
      if (isMap(backup) && backup.items.length === 0) doc.deleteIn(['spec', 'backup']);
      const entry = doc.createNode({ name: pluginName, isWALArchiver: true, parameters: { barmanObjectName: ref.name, serverName } });
      const list = doc.getIn(['spec', 'plugins']);
      if (isSeq(list)) list.items.push(entry);
      else doc.setIn(['spec', 'plugins'], doc.createNode([entry]));
      summary.changes.push(
        `Cluster ${cname}: spec.backup.barmanObjectStore${retention ? ' and retentionPolicy' : ''} removed; spec.plugins[] ${pluginName} ` +
          `archives WAL to ObjectStore ${ref.name} with serverName ${serverName} (the same folder ${safeDisplay(own.destinationPath)}/${serverName}/, so the archive continues without a gap)`,
      );
      migrated.add(`${cluster.metadata.namespace ?? ''}/${cname}`);
    }
    for (const { e, i } of externals) {
      const block = e.barmanObjectStore!;
      const serverName = block.serverName ?? e.name;
      const ref = storeFor(cluster, doc, ['spec', 'externalClusters', i, 'barmanObjectStore'], block, `${e.name}-store`, undefined, `Cluster ${cname} externalClusters ${e.name}`);
      doc.deleteIn(['spec', 'externalClusters', i, 'barmanObjectStore']);
      doc.setIn(['spec', 'externalClusters', i, 'plugin'], doc.createNode({ name: pluginName, parameters: { barmanObjectName: ref.name, serverName } }));
      summary.changes.push(`Cluster ${cname}: externalClusters ${e.name} reads ObjectStore ${ref.name}, serverName ${serverName}, through ${pluginName}`);
    }
    if (cluster.spec.bootstrap?.recovery?.backup) {
      summary.notes.push(
        `Cluster ${cname} recovers from Backup object "${cluster.spec.bootstrap.recovery.backup.name}": a Backup taken in-tree is restored by CNPG itself, not by a plugin; ` +
          'to recover through pgark, use bootstrap.recovery.source with an externalClusters entry (plugin: name, parameters: barmanObjectName, serverName)',
      );
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);

  for (const b of [...set.backups, ...set.scheduledBackups]) {
    if (b.spec.method !== 'barmanObjectStore') continue;
    const doc = documentOf(files, b);
    doc.setIn(['spec', 'method'], 'plugin');
    doc.setIn(['spec', 'pluginConfiguration'], doc.createNode({ name: pluginName }));
    summary.changes.push(`${b.kind} ${b.metadata.name}: method plugin, pluginConfiguration.name ${pluginName}`);
    if (!migrated.has(`${b.metadata.namespace ?? ''}/${b.spec.cluster.name}`)) {
      summary.notes.push(`${b.kind} ${b.metadata.name} is for Cluster ${b.spec.cluster.name}, which is not among the migrated manifests: migrate that Cluster too, or the backup fails`);
    }
  }
  summary.changes.unshift(
    ...stores.map(
      (s) => `ObjectStore ${s.name}${s.namespace ? ` in namespace ${s.namespace}` : ''} created for ${s.users.join(', ')}${s.retentionPolicy ? `, retentionPolicy ${s.retentionPolicy}` : ''}`,
    ),
  );
  if (stores.length === 0) {
    summary.notes.push('no spec.backup.barmanObjectStore or externalClusters[].barmanObjectStore found: nothing to migrate');
  } else {
    summary.steps.push(
      'install the pgark plugin in the operator namespace once (docs/kubernetes.md: kubectl apply -k deploy/, then the certificates)',
      'apply the ObjectStore objects first: they must be in the namespace of the Cluster that uses them, next to the Secrets they name',
      'apply each Cluster in one change: CNPG restarts the pods and pgark takes WAL archiving over from the in-tree barman-cloud, in the same bucket folder',
      'apply the Backup and ScheduledBackup objects after their Cluster; the backups taken in-tree stay in the catalog and remain restorable',
      'check with `kubectl get cluster` that ContinuousArchiving is true again before you delete anything',
    );
  }
  return stores;
}

/** --from barman-cloud-plugin: the same ObjectStores, read by pgark instead of barman-cloud. */
function renamePlugin(files: YamlFile[], pluginName: string, summary: MigrationSummary): StoreRef[] {
  const paths: { kind: string; path: (string | number)[] }[] = [];
  for (const f of files) {
    for (const doc of f.docs) {
      const kind = String(doc.get('kind'));
      const name = String(doc.getIn(['metadata', 'name']));
      const candidates: (string | number)[][] = [];
      if (kind === 'Cluster') {
        const plugins = doc.getIn(['spec', 'plugins']);
        if (isSeq(plugins)) plugins.items.forEach((_, i) => candidates.push(['spec', 'plugins', i, 'name']));
        const ext = doc.getIn(['spec', 'externalClusters']);
        if (isSeq(ext)) ext.items.forEach((_, i) => candidates.push(['spec', 'externalClusters', i, 'plugin', 'name']));
      } else if (kind === 'Backup' || kind === 'ScheduledBackup') {
        candidates.push(['spec', 'pluginConfiguration', 'name']);
      }
      for (const p of candidates) {
        if (doc.getIn(p) !== BARMAN_CLOUD_PLUGIN_NAME) continue;
        doc.setIn(p, pluginName);
        paths.push({ kind, path: p });
        summary.changes.push(`${kind} ${name}: ${p.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('').slice(1)} ${BARMAN_CLOUD_PLUGIN_NAME} -> ${pluginName}`);
      }
      if (kind === 'Cluster' && doc.hasIn(['spec', 'backup', 'barmanObjectStore'])) {
        summary.notes.push(`Cluster ${name} still has spec.backup.barmanObjectStore: run pgark migrate --from in-tree for it`);
      }
    }
  }
  if (paths.length === 0) {
    summary.notes.push(`no reference to ${BARMAN_CLOUD_PLUGIN_NAME} found: nothing to migrate`);
  } else {
    summary.steps.push(
      'install the pgark plugin (docs/kubernetes.md); the ObjectStore objects stay as they are: pgark reads the same barmancloud.cnpg.io/v1 kind',
      'apply the changed Clusters, then the Backup and ScheduledBackup objects; the archive and the backups continue in the same folders',
      `remove plugin-barman-cloud's Deployment only after every Cluster has moved (kubectl get cluster: ContinuousArchiving true)`,
    );
    summary.notes.push(
      `instead of editing the manifests, pgark can answer under the old name: serve it with --name ${BARMAN_CLOUD_PLUGIN_NAME} and label its Service cnpg.io/pluginName: ${BARMAN_CLOUD_PLUGIN_NAME} (after removing barman-cloud's Service)`,
    );
  }
  return [];
}

/** The file's documents, with the ObjectStores first needed by its Clusters put before them. */
function render(f: YamlFile, stores: StoreRef[]): string {
  const docs: Document[] = stores.filter((s) => s.file === f.path).map(objectStoreDocument);
  docs.push(...f.docs);
  return docs
    .map((d) => d.toString({ lineWidth: 0 }))
    .map((t, i) => (i === 0 || t.startsWith('---') ? t : `---\n${t}`))
    .join('');
}

function objectStoreDocument(s: StoreRef): Document {
  const doc = new Document({
    apiVersion: OBJECT_STORE_API_VERSION,
    kind: 'ObjectStore',
    metadata: s.namespace ? { name: s.name, namespace: s.namespace } : { name: s.name },
    spec: s.retentionPolicy ? { retentionPolicy: s.retentionPolicy } : {},
  });
  // The block is copied as a node so its comments come along; an alias would point into another document.
  let aliased = false;
  visit(s.node, { Alias: () => void (aliased = true) });
  const configuration = aliased || isAlias(s.node) ? doc.createNode(s.plain) : (s.node.clone() as Node);
  if (isMap(configuration)) configuration.delete('serverName');
  doc.setIn(['spec', 'configuration'], configuration);
  return doc;
}

/** The output checked with pgark's own validator, as `pgark check -f` would read it (ObjectStores included). */
async function checkOutput(files: MigratedFile[]): Promise<void> {
  const issues: ManifestIssue[] = [];
  for (const f of files) {
    const parsed = parseText(`${f.source} (migrated)`, f.text);
    issues.push(...parsed.issues);
    for (const d of parsed.documents) issues.push(...(await validateDocument(d)).issues);
  }
  if (issues.length > 0) throw new PgarkError(`internal: the migrated manifests do not validate, nothing written:\n${new ConfigError(issues).message}`);
}

/** JSON with sorted keys, so two blocks written in different orders compare equal. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** A Kubernetes object name from free text: lower case, [a-z0-9-], at most 63 characters. */
function objectName(wanted: string): string {
  const s = wanted.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return s || 'store';
}

function uniqueName(base: string, namespace: string | undefined, taken: Set<string>): string {
  let name = base;
  for (let n = 2; taken.has(`${namespace ?? ''}/${name}`); n++) name = `${base.slice(0, 60)}-${n}`;
  taken.add(`${namespace ?? ''}/${name}`);
  return name;
}
