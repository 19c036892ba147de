/**
 * Rules that span several fields (the CNPG webhook's checks), run on the raw document next to
 * the zod schema so that every problem of a file is reported in one go, even when the schema
 * already found others. Each rule quotes CNPG's own error text where CNPG has one.
 */
import type { FieldPath } from './source.js';
import { closestWord } from './hints.js';
import { barmanObjectStore } from './schema.js';
import { safeDisplay } from '../storage/destination.js';
import { redundancyProblem, RETENTION_REDUNDANCY_ANNOTATION, RETENTION_REDUNDANCY_EXPECTED } from './retention-redundancy.js';

const STORE_FIELDS = Object.keys(barmanObjectStore.shape);

export interface RuleIssue {
  path: FieldPath;
  message: string;
  expected?: string;
  hint?: string;
}

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
function present(v: unknown): boolean {
  return v !== undefined && v !== null && v !== '';
}

const PROVIDERS = ['s3Credentials', 'azureCredentials', 'googleCredentials'] as const;
type Provider = (typeof PROVIDERS)[number];

export type DestinationKind = 's3' | 'azure' | 'google' | 'file';

/** What kind of store a destinationPath names, or undefined when it is not a URL pgark knows. */
export function destinationKind(url: string): DestinationKind | undefined {
  if (/^s3:\/\/[^/\s]+/.test(url)) return 's3';
  if (/^gs:\/\/[^/\s]+/.test(url)) return 'google';
  if (/^file:\/\/\S+$/.test(url)) return 'file';
  // https://ACCOUNT.blob.core.windows.net/CONTAINER/... or the emulator form http://HOST:PORT/ACCOUNT/CONTAINER/...
  if (/^https?:\/\/[^/\s]+\/[^/\s]+/.test(url)) return 'azure';
  return undefined;
}

const PROVIDER_FOR: Record<Exclude<DestinationKind, 'file'>, Provider> = {
  s3: 's3Credentials',
  azure: 'azureCredentials',
  google: 'googleCredentials',
};
const URL_FORM: Record<Provider, string> = {
  s3Credentials: 's3://BUCKET/PATH',
  azureCredentials: 'https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH',
  googleCredentials: 'gs://BUCKET/PATH',
};
const DESTINATION_FORMS =
  's3://BUCKET/PATH, https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH, gs://BUCKET/PATH or file:///PATH';

export function objectStoreRules(store: Obj, p: FieldPath): RuleIssue[] {
  const out: RuleIssue[] = [];
  const providers = PROVIDERS.filter((k) => obj(store[k]));
  const dest = str(store.destinationPath);
  const kind = dest ? destinationKind(dest) : undefined;
  if (dest && !kind) {
    out.push({
      path: [...p, 'destinationPath'],
      message: `"${safeDisplay(dest)}" is not an object-store URL`,
      expected: DESTINATION_FORMS,
      hint: /\s/.test(dest) ? 'this looks like placeholder text from an example; put the real bucket URL here' : undefined,
    });
  }
  if (kind === 'file') {
    // pgark's local store needs no credentials (CNPG itself has no file:// destination).
    if (providers.length > 0) {
      out.push({ path: [...p, providers[0]], message: 'file:// destinations take no credentials', hint: `remove ${providers.join(' and ')}` });
    }
  } else if (providers.length !== 1) {
    out.push({
      path: providers.length > 1 ? [...p, providers[1]] : p,
      message: 'One and only one of azureCredentials, s3Credentials and googleCredentials are required',
      hint:
        providers.length > 1
          ? `keep only the one matching destinationPath${kind ? ` (${PROVIDER_FOR[kind]})` : ''}`
          : `add ${kind ? PROVIDER_FOR[kind] : 's3Credentials, azureCredentials or googleCredentials'} (for IAM roles: s3Credentials: {inheritFromIAMRole: true})`,
    });
  } else if (kind && PROVIDER_FOR[kind] !== providers[0]) {
    const provider = providers[0];
    out.push({
      path: [...p, 'destinationPath'],
      message: `destinationPath "${safeDisplay(dest!)}" is ${kind === 'azure' ? 'an Azure Blob' : kind === 's3' ? 'an s3://' : 'a gs://'} URL but the credentials are ${provider}`,
      expected: `a destination for ${provider} such as ${URL_FORM[provider]}`,
      hint: `either write destinationPath as ${URL_FORM[provider]} or use ${PROVIDER_FOR[kind]} instead of ${provider}`,
    });
  }
  const s3 = obj(store.s3Credentials);
  if (s3) out.push(...s3Rules(s3, [...p, 's3Credentials']));
  const azure = obj(store.azureCredentials);
  if (azure) out.push(...azureRules(azure, [...p, 'azureCredentials']));
  const google = obj(store.googleCredentials);
  if (google) {
    const n = [present(google.applicationCredentials), google.gkeEnvironment === true].filter(Boolean).length;
    if (n !== 1) {
      out.push({ path: [...p, 'googleCredentials'], message: 'exactly one of applicationCredentials and gkeEnvironment must be set' });
    }
  }
  const endpoint = str(store.endpointURL);
  if (endpoint && !/^https?:\/\/[^\s/]+(\/\S*)?$/.test(endpoint)) {
    out.push({ path: [...p, 'endpointURL'], message: `"${safeDisplay(endpoint)}" is not an http(s) URL`, expected: 'https://HOST[:PORT]' });
  }
  return out;
}

/**
 * When barmanObjectStore is empty and its fields sit next to it (dedented by one level, as in
 * the seed's Azure recovery snippet), the store rules still run on those fields where they are,
 * so their own mistakes (placeholder URLs, conflicting credentials) show in the same pass.
 */
function misplacedStoreRules(parent: Obj, p: FieldPath): RuleIssue[] {
  const fields = STORE_FIELDS.filter((k) => k in parent && k !== 'name');
  if (!fields.includes('destinationPath')) return [];
  const virtual = Object.fromEntries(fields.map((k) => [k, parent[k]]));
  return objectStoreRules(virtual, p);
}

function s3Rules(s3: Obj, p: FieldPath): RuleIssue[] {
  const hasId = present(s3.accessKeyId);
  const hasSecret = present(s3.secretAccessKey);
  if (s3.inheritFromIAMRole === true) {
    return hasId || hasSecret
      ? [{ path: [...p, 'inheritFromIAMRole'], message: 'inheritFromIAMRole cannot be combined with accessKeyId/secretAccessKey', hint: 'use either the IAM role or static keys' }]
      : [];
  }
  if (hasId && hasSecret) return [];
  const missing = !hasId && !hasSecret ? 'accessKeyId and secretAccessKey' : hasId ? 'secretAccessKey' : 'accessKeyId';
  return [
    {
      path: p,
      message: `s3Credentials needs either inheritFromIAMRole: true or both accessKeyId and secretAccessKey; ${missing} missing`,
      hint: hasId || hasSecret ? `add ${missing} (a {name, key} reference to a Secret)` : 'for an IAM role (IRSA, instance profile) set inheritFromIAMRole: true',
    },
  ];
}

function azureRules(az: Obj, p: FieldPath): RuleIssue[] {
  const out: RuleIssue[] = [];
  if (present(az.connectionString)) {
    const others = ['storageAccount', 'storageKey', 'storageSasToken', 'inheritFromAzureAD', 'useDefaultAzureCredentials'].filter(
      (k) => present(az[k]) && az[k] !== false,
    );
    if (others.length > 0) {
      out.push({
        path: [...p, 'connectionString'],
        message: `connectionString cannot be combined with ${others.join(', ')}`,
        hint: 'a connection string already holds the account and its key or SAS token: keep connectionString alone, or drop it and use storageAccount with storageKey or storageSasToken',
      });
    }
    return out;
  }
  const methods = ['storageKey', 'storageSasToken', 'inheritFromAzureAD', 'useDefaultAzureCredentials'].filter(
    (k) => present(az[k]) && az[k] !== false,
  );
  if (methods.length !== 1) {
    out.push({
      path: p,
      message:
        methods.length === 0
          ? 'azureCredentials needs connectionString, or storageAccount with one of storageKey, storageSasToken, inheritFromAzureAD, useDefaultAzureCredentials'
          : `only one of ${methods.join(', ')} may be set`,
    });
  }
  for (const k of ['storageKey', 'storageSasToken']) {
    if (present(az[k]) && !present(az.storageAccount)) {
      out.push({ path: [...p, k], message: `${k} requires storageAccount`, hint: 'add storageAccount: {name, key} naming the account' });
    }
  }
  return out;
}

/** plugin-barman-cloud's ObjectStore: its configuration is a barmanObjectStore whose serverName comes from the Cluster. */
export function objectStoreResourceRules(doc: Obj): RuleIssue[] {
  const config = obj(obj(doc.spec)?.configuration);
  if (!config) return [];
  const p = ['spec', 'configuration'];
  const out = objectStoreRules(config, p);
  if (present(config.serverName)) {
    out.push({
      path: [...p, 'serverName'],
      message: 'serverName must not be set in an ObjectStore',
      hint: "set it per Cluster instead: spec.plugins[].parameters.serverName (it defaults to the Cluster's name)",
    });
  }
  return out;
}

/**
 * CNPG's admission rules on spec.plugins: at most one enabled WAL archiver, and no archiver
 * plugin next to an in-tree spec.backup.barmanObjectStore (both would archive the same WAL).
 * Also run by the plugin's operator validation on the Cluster JSON CNPG sends.
 */
export function pluginRules(doc: Obj): RuleIssue[] {
  const spec = obj(doc.spec);
  const plugins = Array.isArray(spec?.plugins) ? spec.plugins.map(obj) : [];
  const archivers = plugins.map((p, i) => ({ p, i })).filter(({ p }) => p && p.enabled !== false && p.isWALArchiver === true);
  const out: RuleIssue[] = [];
  if (archivers.length > 1) {
    out.push({
      path: ['spec', 'plugins', archivers[1].i, 'isWALArchiver'],
      message: `only one plugin may archive WAL, but ${archivers.map(({ p }) => JSON.stringify(p!.name)).join(' and ')} set isWALArchiver: true`,
      hint: 'keep isWALArchiver on the plugin that owns the archive and remove it from the others',
    });
  }
  if (archivers.length > 0 && present(obj(spec?.backup)?.barmanObjectStore)) {
    out.push({
      path: ['spec', 'backup', 'barmanObjectStore'],
      message: `spec.backup.barmanObjectStore archives WAL in-tree while plugin ${JSON.stringify(archivers[0].p!.name)} is the WAL archiver`,
      hint: 'move the store into an ObjectStore and drop spec.backup.barmanObjectStore, or set isWALArchiver: false on the plugin: a Cluster archives WAL through one path',
    });
  }
  return out;
}

const RECOVERY_TARGETS = ['targetImmediate', 'targetLSN', 'targetName', 'targetXID', 'targetTime'] as const;

export function clusterRules(doc: Obj): RuleIssue[] {
  const spec = obj(doc.spec);
  if (!spec) return [];
  const out: RuleIssue[] = [];
  const annotations = obj(obj(doc.metadata)?.annotations);
  if (annotations && RETENTION_REDUNDANCY_ANNOTATION in annotations) {
    const problem = redundancyProblem(annotations[RETENTION_REDUNDANCY_ANNOTATION]);
    const path = ['metadata', 'annotations', RETENTION_REDUNDANCY_ANNOTATION];
    if (problem) out.push({ path, message: problem, expected: RETENTION_REDUNDANCY_EXPECTED, hint: 'how many backups retention keeps at least, whatever their age' });
  }
  const backupStore = obj(obj(spec.backup)?.barmanObjectStore);
  if (backupStore) out.push(...objectStoreRules(backupStore, ['spec', 'backup', 'barmanObjectStore']));
  out.push(...pluginRules(doc));

  const externals = Array.isArray(spec.externalClusters) ? spec.externalClusters : [];
  const seen = new Set<string>();
  externals.forEach((raw, i) => {
    const ec = obj(raw);
    if (!ec) return;
    const p = ['spec', 'externalClusters', i];
    const name = str(ec.name);
    if (name) {
      if (seen.has(name)) out.push({ path: [...p, 'name'], message: `duplicate external cluster name "${name}"` });
      seen.add(name);
      if (/[/\\]/.test(name) || name === '.' || name === '..') {
        out.push({ path: [...p, 'name'], message: `external cluster name "${name}" must not contain "/" or "\\" nor be "." or ".."` });
      }
    }
    if (!present(ec.connectionParameters) && !present(ec.barmanObjectStore) && !present(ec.plugin)) {
      out.push({ path: p, message: 'an external cluster needs connectionParameters, barmanObjectStore or plugin' });
    }
    const store = obj(ec.barmanObjectStore);
    if (store) out.push(...objectStoreRules(store, [...p, 'barmanObjectStore']));
    else out.push(...misplacedStoreRules(ec, p));
  });

  const bootstrap = obj(spec.bootstrap);
  if (bootstrap) {
    const methods = ['initdb', 'recovery', 'pg_basebackup'].filter((k) => present(bootstrap[k]));
    if (methods.length > 1) {
      out.push({ path: ['spec', 'bootstrap', methods[1]], message: `Only one bootstrap method can be specified at a time (found ${methods.join(', ')})` });
    }
    const recovery = obj(bootstrap.recovery);
    if (recovery) out.push(...recoveryRules(recovery, externals.map(obj)));
  }
  return out;
}

function recoveryRules(r: Obj, externals: (Obj | undefined)[]): RuleIssue[] {
  const p = ['spec', 'bootstrap', 'recovery'];
  const out: RuleIssue[] = [];
  const origins = ['backup', 'source', 'volumeSnapshots'].filter((k) => present(r[k]));
  if (origins.length === 0) {
    out.push({ path: p, message: 'recovery needs one of backup, source or volumeSnapshots', hint: 'source: names an externalClusters entry with a barmanObjectStore' });
  } else if (origins.length > 1) {
    out.push({ path: [...p, origins[1]], message: `${origins.join(' and ')} are mutually exclusive` });
  }
  if (present(r.database) && !present(r.owner)) out.push({ path: [...p, 'database'], message: 'You need to specify the database owner user', hint: 'add owner: next to database:' });
  if (present(r.owner) && !present(r.database)) out.push({ path: [...p, 'owner'], message: 'You need to specify the database name', hint: 'add database: next to owner:' });

  const source = str(r.source);
  if (source) {
    const names = externals.map((e) => str(e?.name)).filter((n): n is string => !!n);
    const target = externals.find((e) => str(e?.name) === source);
    if (!target) {
      const close = closestWord(source, names);
      out.push({
        path: [...p, 'source'],
        message: `no externalClusters entry is named "${source}"`,
        expected: names.length ? `one of ${names.join(', ')}` : 'an entry in spec.externalClusters',
        hint: close ? `did you mean "${close}"?` : 'add it under spec.externalClusters with a barmanObjectStore',
      });
    } else if (!present(target.barmanObjectStore) && !present(target.connectionParameters) && !present(target.plugin)) {
      out.push({ path: [...p, 'source'], message: `external cluster "${source}" has no barmanObjectStore, connectionParameters or plugin` });
    }
  }

  const rt = obj(r.recoveryTarget);
  if (rt) {
    const rp = [...p, 'recoveryTarget'];
    const targets = RECOVERY_TARGETS.filter((k) => (k === 'targetImmediate' ? rt[k] === true : present(rt[k])));
    if (targets.length > 1) {
      out.push({ path: [...rp, targets[1]], message: `Recovery target options are mutually exclusive (found ${targets.join(', ')})`, hint: 'keep one target; targetTLI may accompany it' });
    }
    const needsId = targets.filter((k) => k === 'targetName' || k === 'targetXID' || k === 'targetImmediate');
    if (needsId.length > 0 && !present(rt.backupID) && !present(r.volumeSnapshots)) {
      out.push({
        path: rp,
        message: `BackupID is missing (${needsId[0]} needs recoveryTarget.backupID)`,
        hint: 'set backupID to the barman backup ID (e.g. 20240501T120000) taken before the target; `pgark backup list` shows them',
      });
    }
    if (present(rt.backupID) && present(r.volumeSnapshots)) {
      out.push({ path: [...rp, 'backupID'], message: 'backupID cannot be used with volumeSnapshots' });
    }
  }
  return out;
}

export function backupSpecRules(doc: Obj): RuleIssue[] {
  const spec = obj(doc.spec);
  if (!spec) return [];
  const out: RuleIssue[] = [];
  const method = spec.method ?? 'barmanObjectStore';
  if (method === 'barmanObjectStore') {
    for (const k of ['online', 'onlineConfiguration']) {
      if (present(spec[k])) {
        out.push({ path: ['spec', k], message: `${k} applies only to method: volumeSnapshot, not barmanObjectStore`, hint: `remove ${k}` });
      }
    }
  }
  if (method === 'plugin' && !present(spec.pluginConfiguration)) {
    out.push({ path: ['spec'], message: 'method: plugin requires pluginConfiguration' });
  }
  return out;
}
