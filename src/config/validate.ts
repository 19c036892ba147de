/**
 * Turns parsed YAML documents into typed manifests: kind dispatch, zod schema, cross-field
 * rules, value checks (Markdown links, placeholders) and positions for every issue.
 */
import { parseSchedule, ScheduleError } from '../schedule/cron.js';
import type { z } from 'zod';
import type { ManifestIssue, SourcePosition } from '../util/errors.js';
import type { Backup, Cluster, DocumentOrigin, ObjectStore, ScheduledBackup, ScheduledDrill, Secret, SecretKeySelector } from './types.js';
import { SCHEMAS, type ManifestKind } from './schema.js';
import { schemaAt, keysOf, ignoredFieldsIn } from './schema-walk.js';
import { formatPath, type FieldPath, type SourceDocument } from './source.js';
import { closestWord, markdownLinkHint, placeholderIn, unknownKeyHint } from './hints.js';
import { backupSpecRules, clusterRules, objectStoreResourceRules, type RuleIssue } from './rules.js';
import { rotationRules } from './backup-rotation.js';
import { safeDisplay } from '../storage/destination.js';

export type ValidManifest = Cluster | Backup | ScheduledBackup | ScheduledDrill | Secret | ObjectStore;

export interface DocumentResult {
  manifest?: ValidManifest;
  /** Why a document was skipped (a kind pgark does not read). */
  note?: string;
  issues: ManifestIssue[];
}

/** CNPG kinds pgark has no use for: accepted in a manifest directory, noted, not read. */
const OTHER_CNPG_KINDS = ['Pooler', 'Database', 'Publication', 'Subscription', 'ImageCatalog', 'ClusterImageCatalog', 'FailoverQuorum'];
const KINDS = Object.keys(SCHEMAS) as ManifestKind[];

/** Keys whose string values must not hold unfilled template placeholders such as $backup-name. */
const NAME_LIKE_KEYS = new Set(['name', 'key', 'namespace', 'source', 'serverName', 'destinationPath', 'endpointURL', 'backupID', 'database', 'owner']);

/** URLs that may carry user:password@ or a SAS query: shown through safeDisplay. */
const URL_KEYS = new Set(['destinationPath', 'endpointURL']);

/** Fields of a Secret that are not its values. */
const SECRET_OPEN_FIELDS = new Set(['apiVersion', 'kind', 'metadata']);

/**
 * True where a document holds a Secret's value. Such a value is never echoed, whatever its type
 * (number, list, invalid base64 ...): issues there name the field and the expected form only.
 */
function isSecretValue(kind: string, path: FieldPath): boolean {
  return kind === 'Secret' && path.length > 0 && !SECRET_OPEN_FIELDS.has(String(path[0]));
}

/** A value as an issue may quote it: URLs without credentials. */
function quoted(path: FieldPath, v: string): string {
  return JSON.stringify(URL_KEYS.has(String(path[path.length - 1])) ? safeDisplay(v) : v);
}

type Obj = Record<string, unknown>;

export async function validateDocument(doc: SourceDocument): Promise<DocumentResult> {
  const value = doc.value;
  if (value === null || value === undefined) return { issues: [] };
  const issue = (path: FieldPath, message: string, extra: Partial<ManifestIssue> = {}, key = false): ManifestIssue => ({
    position: doc.locate(path, key),
    path: formatPath(path),
    message,
    ...extra,
  });
  if (typeof value !== 'object' || Array.isArray(value)) {
    return { issues: [issue([], 'a manifest must be a mapping with apiVersion, kind, metadata', { expected: 'a Kubernetes object' })] };
  }
  const raw = value as Obj;
  const kind = raw.kind;
  const apiVersion = raw.apiVersion;
  if (typeof kind !== 'string' || kind === '') {
    return { issues: [issue(['kind'], 'kind is missing', { expected: KINDS.join(', '), hint: 'start the document with apiVersion: postgresql.cnpg.io/v1 and kind: Cluster' })] };
  }
  if (!(KINDS as string[]).includes(kind)) {
    const close = closestWord(kind, KINDS);
    const isCnpg = typeof apiVersion === 'string' && apiVersion.startsWith('postgresql.cnpg.io/');
    if (close || (isCnpg && !OTHER_CNPG_KINDS.includes(kind))) {
      return {
        issues: [issue(['kind'], `unknown kind "${kind}"`, { expected: KINDS.join(', '), hint: close ? `did you mean "${close}"?` : undefined })],
      };
    }
    const name = (raw.metadata as Obj | undefined)?.name;
    return { issues: [], note: `${doc.file}: ${kind}/${String(name ?? '?')} (${String(apiVersion)}) is not a kind pgark reads; ignored` };
  }
  const k = kind as ManifestKind;
  const schema = SCHEMAS[k] as z.ZodType;
  const parsed = schema.safeParse(raw);
  const issues: ManifestIssue[] = [];
  if (!parsed.success) {
    for (const zi of parsed.error.issues) issues.push(...fromZod(zi, { schema, raw, prefix: [], hidden: (p) => isSecretValue(k, p) }, issue));
  }
  const ruleIssues: RuleIssue[] =
    k === 'Cluster'
      ? clusterRules(raw)
      : k === 'Backup' || k === 'ScheduledBackup'
        ? [...backupSpecRules(raw), ...(k === 'ScheduledBackup' ? rotationRules(raw) : [])]
        : k === 'ObjectStore'
          ? objectStoreResourceRules(raw)
          : [];
  for (const r of ruleIssues) issues.push(issue(r.path, r.message, { expected: r.expected, hint: r.hint }));
  if (k === 'ScheduledBackup' || k === 'ScheduledDrill') issues.push(...scheduleIssues(raw, issue));
  if (k === 'Secret') issues.push(...secretDataIssues(raw, issue));
  addValueHints(raw, [], issues, issue, (p) => isSecretValue(k, p));

  if (issues.length > 0) return { issues: dedupe(issues) };
  const data = parsed.data as Obj;
  const origin: DocumentOrigin = {
    file: doc.file,
    position: doc.position,
    positionOf: (dotted) => doc.locate(parseDotted(dotted)),
  };
  if (k === 'Secret') return { issues, manifest: toSecret(data, origin) };
  recordSelectors(data, [], doc);
  const ignoredFields = ignoredFieldsIn(schema, raw).map(formatPath);
  return { issues, manifest: { ...(data as object), origin, ignoredFields } as ValidManifest };
}

/** Where each SecretKeySelector of a loaded manifest names its key; weak, so manifests can be dropped. */
const selectorOrigins = new WeakMap<object, { position: SourcePosition; path: string }>();

/** The `key:` of a selector from a loaded manifest, so a missing key can be reported at file:line:col. */
export function selectorOrigin(sel: SecretKeySelector): { position: SourcePosition; path: string } | undefined {
  return selectorOrigins.get(sel);
}

function recordSelectors(v: unknown, path: FieldPath, doc: SourceDocument): void {
  if (v === null || typeof v !== 'object') return;
  const o = v as Obj;
  if (typeof o.name === 'string' && typeof o.key === 'string') {
    const keyPath = [...path, 'key'];
    selectorOrigins.set(o, { position: doc.locate(keyPath, true), path: formatPath(keyPath) });
    return;
  }
  const entries: [string | number, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(o);
  for (const [seg, child] of entries) recordSelectors(child, [...path, seg], doc);
}

/** Issues of a document that is not a manifest (a drill's checks file) against `schema`, at file:line:column. */
export function schemaIssues(doc: SourceDocument, schema: z.ZodType): ManifestIssue[] {
  const r = schema.safeParse(doc.value);
  if (r.success) return [];
  const issue: MakeIssue = (path, message, extra = {}, key = false) => ({ position: doc.locate(path, key), path: formatPath(path), message, ...extra });
  return dedupe(r.error.issues.flatMap((zi) => fromZod(zi, { schema, raw: doc.value, prefix: [], hidden: () => false }, issue)));
}

type MakeIssue = (path: FieldPath, message: string, extra?: Partial<ManifestIssue>, key?: boolean) => ManifestIssue;

function valueAt(root: unknown, path: FieldPath): unknown {
  let v: unknown = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function describe(v: unknown, hidden: boolean): string {
  if (v === null) return 'nothing (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return hidden ? `a ${typeof v}` : `${typeof v} ${JSON.stringify(v)}`;
}

interface ZodScope {
  /** Schema the issue paths are relative to. */
  schema: z.ZodType;
  /** Raw value that schema validated. */
  raw: unknown;
  /** Where that value sits in the document. */
  prefix: FieldPath;
  /** Name and keys of the level above the scope's root, for "one level up" hints. */
  parent?: { name: string; keys: readonly string[] };
  /** Document paths whose values must not appear in an issue (a Secret's values). */
  hidden: (path: FieldPath) => boolean;
}

function fromZod(zi: z.core.$ZodIssue, scope: ZodScope, issue: MakeIssue): ManifestIssue[] {
  const { schema } = scope;
  const path = zi.path.filter((s): s is string | number => typeof s !== 'symbol');
  const value = valueAt(scope.raw, path);
  const last = path[path.length - 1];
  const at = (p: FieldPath) => [...scope.prefix, ...p];
  const hidden = scope.hidden(at(path));
  switch (zi.code) {
    case 'unrecognized_keys': {
      const here = keysOf(schemaAt(schema, path));
      // The level above: skip an array index so a list item's parent is the list's field.
      const upPath = typeof last === 'number' ? path.slice(0, -2) : path.slice(0, -1);
      const parentName = typeof last === 'number' ? path[path.length - 2] : last;
      const parent =
        path.length === 0 ? scope.parent : { name: String(parentName), keys: keysOf(schemaAt(schema, upPath)) };
      const children = here
        .map((name) => ({ name, keys: keysOf(schemaAt(schema, [...path, name])) }))
        .filter((c) => c.keys.length > 0);
      return zi.keys.flatMap((key) => {
        const around = { here, parent, children };
        const reported = issue(
          at([...path, key]),
          `unknown field "${key}"`,
          {
            expected: here.length <= 12 ? `one of ${here.join(', ')}` : `a field CNPG defines under ${formatPath(at(path)) || 'the document'}`,
            hint: unknownKeyHint(key, around),
          },
          true,
        );
        return [reported, ...misplacedValueIssues(key, (value as Obj)[key], around, scope, path, issue)];
      });
    }
    case 'invalid_type': {
      if (value === undefined) {
        return [issue(at(path), 'required field is missing', { expected: zi.expected }, true)];
      }
      if (value === null && zi.expected === 'object') {
        return [
          issue(at(path), `"${String(last)}" is empty`, {
            expected: 'a mapping',
            hint: `the fields meant for ${String(last)} must be indented further than "${String(last)}:"`,
          }),
        ];
      }
      const hint =
        zi.expected === 'string' && (typeof value === 'number' || typeof value === 'boolean')
          ? hidden
            ? 'put the value in double quotes'
            : `quote the value: "${String(value)}"`
          : zi.expected === 'boolean' && typeof value === 'string'
            ? 'write true or false without quotes'
            : zi.expected === 'number' && typeof value === 'string'
              ? 'write the number without quotes'
              : undefined;
      return [issue(at(path), `expected ${zi.expected}, got ${describe(value, hidden)}`, { expected: zi.expected, hint })];
    }
    case 'invalid_value': {
      const values = zi.values.map(String).filter((v) => v !== '');
      if (last === 'apiVersion' || last === 'kind') {
        return [issue(at(path), `${String(last)} must be "${values[0]}"`, { expected: values[0] })];
      }
      const close = typeof value === 'string' && !hidden ? closestWord(value, values) : undefined;
      return [
        issue(at(path), hidden ? 'invalid value' : `invalid value ${typeof value === 'string' ? quoted(at(path), value) : JSON.stringify(value)}`, {
          expected: `one of ${values.join(', ')}`,
          hint: close ? `did you mean "${close}"?` : undefined,
        }),
      ];
    }
    case 'too_small':
      if (zi.origin === 'string') return [issue(at(path), 'must not be empty', { expected: 'a non-empty string' })];
      return [issue(at(path), `must be at least ${String(zi.minimum)}`, { expected: `a number >= ${String(zi.minimum)}` })];
    case 'too_big':
      return [issue(at(path), `must be at most ${String(zi.maximum)}`)];
    default:
      return [issue(at(path), zi.message)];
  }
}

/**
 * A key written at the wrong level is validated against the schema of the level it belongs to,
 * so mistakes further down (e.g. `wal:` nested under a misplaced azureCredentials) still show.
 */
function misplacedValueIssues(
  key: string,
  value: unknown,
  around: { here: readonly string[]; parent?: { name: string; keys: readonly string[] }; children: { name: string; keys: readonly string[] }[] },
  scope: ZodScope,
  path: FieldPath,
  issue: MakeIssue,
): ManifestIssue[] {
  const home = around.children.find((c) => c.keys.includes(key));
  const intendedPath = home ? [...path, home.name, key] : undefined;
  const intended = intendedPath ? schemaAt(scope.schema, intendedPath) : undefined;
  if (!intended || value === null || typeof value !== 'object') return [];
  const r = intended.safeParse(value);
  if (r.success) return [];
  const sub: ZodScope = {
    schema: intended,
    raw: value,
    prefix: [...scope.prefix, ...path, key],
    parent: { name: key, keys: keysOf(schemaAt(scope.schema, [...path, home!.name])) },
    hidden: scope.hidden,
  };
  return r.error.issues.flatMap((zi) => fromZod(zi, sub, issue));
}

/** Adds Markdown-link and placeholder findings: as hints on an existing issue at that path, or as new issues. */
function addValueHints(v: unknown, path: FieldPath, issues: ManifestIssue[], issue: MakeIssue, hidden: (path: FieldPath) => boolean): void {
  if (hidden(path)) return;
  if (typeof v === 'string') {
    const key = path[path.length - 1];
    const md = markdownLinkHint(v);
    const ph = typeof key === 'string' && NAME_LIKE_KEYS.has(key) ? placeholderIn(v) : undefined;
    const hint = md ?? (ph ? `"${ph}" looks like a placeholder left from an example; replace it with the real value` : undefined);
    if (!hint) return;
    const at = formatPath(path);
    const existing = issues.find((i) => i.path === at);
    if (existing) existing.hint = hint;
    else issues.push(issue(path, md ? `${quoted(path, v)} is a Markdown link, not a value` : `unfilled placeholder ${JSON.stringify(ph)}`, { hint }));
    return;
  }
  if (v === null || typeof v !== 'object') return;
  const entries: [string | number, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
  for (const [seg, child] of entries) addValueHints(child, [...path, seg], issues, issue, hidden);
}

/** Deep cron validation is the schedule module's (robfig/cron grammar with a leading seconds field). */
function scheduleIssues(raw: Obj, issue: MakeIssue): ManifestIssue[] {
  const schedule = (raw.spec as Obj | undefined)?.schedule;
  if (typeof schedule !== 'string' || schedule === '') return [];
  try {
    parseSchedule(schedule);
    return [];
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    return [
      issue(['spec', 'schedule'], `invalid schedule ${JSON.stringify(schedule)}: ${err.detail}`, {
        expected: 'a robfig/cron schedule with a leading seconds field, e.g. "0 0 0 * * *"',
        hint: err.hint,
      }),
    ];
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function secretDataIssues(raw: Obj, issue: MakeIssue): ManifestIssue[] {
  const data = raw.data;
  if (!data || typeof data !== 'object') return [];
  const out: ManifestIssue[] = [];
  for (const [key, v] of Object.entries(data as Obj)) {
    if (typeof v !== 'string') continue;
    // Kubernetes (Go's base64 decoder) skips line breaks, so a folded YAML value is fine.
    const compact = v.replace(/[\r\n]/g, '');
    if (!BASE64.test(compact) || compact.length % 4 !== 0) {
      out.push(
        issue(['data', key], 'value is not valid base64', {
          expected: 'base64 text (data) or plain text under stringData',
          hint: 'move the plain value to stringData:, or encode it with `base64 -w0`',
        }),
      );
    }
  }
  return out;
}

function toSecret(data: Obj, origin: DocumentOrigin): Secret {
  const values: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries((data.data as Record<string, string>) ?? {})) values[k] = Buffer.from(v.replace(/[\r\n]/g, ''), 'base64');
  // As in Kubernetes, stringData wins over data for the same key.
  for (const [k, v] of Object.entries((data.stringData as Record<string, string>) ?? {})) values[k] = Buffer.from(v, 'utf8');
  return { apiVersion: 'v1', kind: 'Secret', metadata: data.metadata as Secret['metadata'], values, origin };
}

function dedupe(issues: ManifestIssue[]): ManifestIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path}\u0000${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** "spec.externalClusters[0].name" -> ['spec', 'externalClusters', 0, 'name'] */
function parseDotted(dotted: string): FieldPath {
  const out: (string | number)[] = [];
  for (const part of dotted.split('.')) {
    const m = /^([^[]*)((\[\d+\])*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1]) out.push(m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}
