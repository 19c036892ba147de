/**
 * Navigating the zod schemas by field path, to find the keys allowed around an error (for
 * hints) and the fields marked ignored. Relies on zod 4's public `_zod.def` shapes.
 */
import type { z } from 'zod';
import { IGNORED } from './schema.js';
import type { FieldPath } from './source.js';

type AnySchema = z.ZodType;

interface Def {
  type: string;
  innerType?: AnySchema;
  in?: AnySchema;
  element?: AnySchema;
  valueType?: AnySchema;
  shape?: Record<string, AnySchema>;
}

function def(s: AnySchema): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

/** The schema under optional/default/nullable/transform wrappers. */
function unwrap(s: AnySchema): AnySchema {
  for (;;) {
    const d = def(s);
    if ((d.type === 'optional' || d.type === 'default' || d.type === 'nullable' || d.type === 'prefault') && d.innerType) s = d.innerType;
    else if (d.type === 'pipe' && d.in) s = d.in;
    else return s;
  }
}

export function isIgnored(s: AnySchema): boolean {
  for (let cur: AnySchema | undefined = s; cur; ) {
    if (cur.description === IGNORED) return true;
    const d = def(cur);
    cur = d.type === 'optional' || d.type === 'default' || d.type === 'nullable' ? d.innerType : undefined;
  }
  return false;
}

export function child(s: AnySchema, seg: string | number): AnySchema | undefined {
  const d = def(unwrap(s));
  if (d.type === 'object') return d.shape?.[String(seg)];
  if (d.type === 'array' && typeof seg === 'number') return d.element;
  if (d.type === 'record') return d.valueType;
  return undefined;
}

export function schemaAt(root: AnySchema, path: FieldPath): AnySchema | undefined {
  let s: AnySchema | undefined = root;
  for (const seg of path) {
    if (!s) return undefined;
    s = child(s, seg);
  }
  return s;
}

/** Keys of an object schema (through wrappers and array elements); empty for non-objects. */
export function keysOf(s: AnySchema | undefined): string[] {
  if (!s) return [];
  let u = unwrap(s);
  if (def(u).type === 'array') u = unwrap(def(u).element!);
  const d = def(u);
  return d.type === 'object' && d.shape ? Object.keys(d.shape) : [];
}

/** Dotted paths of every ignored field present in `value`. */
export function ignoredFieldsIn(schema: AnySchema, value: unknown, path: (string | number)[] = []): FieldPath[] {
  if (value === null || typeof value !== 'object') return [];
  const out: FieldPath[] = [];
  const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  for (const [seg, v] of entries) {
    const c = child(schema, seg);
    if (!c) continue;
    if (isIgnored(c)) out.push([...path, seg]);
    else if (def(unwrap(c)).type !== 'record') out.push(...ignoredFieldsIn(c, v, [...path, seg]));
  }
  return out;
}
