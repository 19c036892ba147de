/**
 * Checks an object against the Kubernetes OpenAPI shapes as @kubernetes/client-node's generated
 * models carry them: a deserialize/serialize round trip through its ObjectSerializer must give
 * the object back (a field the model does not know is dropped, so it shows as a difference), and
 * every field the model declares required (non-optional in the generated .d.ts) must be present.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';

interface Attribute {
  baseName: string;
  type: string;
}
type Model = { getAttributeTypeMap(): Attribute[] };

const modelsDir = join(dirname(createRequire(import.meta.url).resolve('@kubernetes/client-node')), 'gen', 'models');
const requiredCache = new Map<string, Set<string>>();

/** Fields the generated class declares without `?`: the OpenAPI schema's required list. */
function requiredFields(type: string): Set<string> {
  let r = requiredCache.get(type);
  if (!r) {
    const dts = readFileSync(join(modelsDir, `${type}.d.ts`), 'utf8');
    r = new Set([...dts.matchAll(/^\s+'([^']+)': /gm)].map((m) => m[1]));
    requiredCache.set(type, r);
  }
  return r;
}

function model(type: string): Model | undefined {
  const m = (k8s as unknown as Record<string, unknown>)[type];
  return typeof m === 'function' && 'getAttributeTypeMap' in m ? (m as unknown as Model) : undefined;
}

function walk(value: unknown, type: string, path: string, problems: string[]): void {
  if (value === undefined || value === null) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) problems.push(`${path}: expected a list`);
    else value.forEach((v, i) => walk(v, array[1], `${path}[${i}]`, problems));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    for (const [k, v] of Object.entries(value as object)) walk(v, map[1], `${path}.${k}`, problems);
    return;
  }
  const m = model(type);
  if (!m) return;
  const attrs = m.getAttributeTypeMap();
  const names = new Set(attrs.map((a) => a.baseName));
  for (const key of Object.keys(value as object)) if (!names.has(key)) problems.push(`${path}.${key}: not a field of ${type}`);
  for (const req of requiredFields(type)) {
    const attr = attrs.find((a) => a.baseName === req || (a as unknown as { name: string }).name === req);
    if (attr && (value as Record<string, unknown>)[attr.baseName] === undefined) problems.push(`${path}.${attr.baseName}: required by ${type}`);
  }
  for (const a of attrs) walk((value as Record<string, unknown>)[a.baseName], a.type, `${path}.${a.baseName}`, problems);
}

/** Problems of `object` as a `type` (e.g. 'V1Pod', 'V1Job'); [] when it is a valid object of that type. */
export function kubeShapeProblems(object: unknown, type: string): string[] {
  const problems: string[] = [];
  const roundTrip = ObjectSerializer.serialize(ObjectSerializer.deserialize(structuredClone(object), type), type);
  if (!isDeepStrictEqual(JSON.parse(JSON.stringify(roundTrip)), JSON.parse(JSON.stringify(object)))) {
    problems.push(`${type}: the client-node model round trip changed the object (a field it does not know was dropped)`);
  }
  walk(object, type, type, problems);
  return problems;
}
