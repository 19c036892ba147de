/**
 * Navigating the zod schemas by field path, to find the keys allowed around an error (for
 * hints) and the fields marked ignored. Uses zod 4's public classes (instanceof z.ZodObject, ...)
 * and their accessors (.shape, .element, .valueType, .unwrap(), .in).
 */
import { z } from 'zod';
import { IGNORED } from './schema.js';
import type { FieldPath } from './source.js';

type AnySchema = z.ZodType;

/** The schema inside an optional/default/nullable wrapper, or undefined when s is none of them. */
function inner(s: AnySchema): AnySchema | undefined {
  return s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodNullable ? (s.unwrap() as AnySchema) : undefined;
}

/** The schema under optional/default/nullable/prefault wrappers and transforms. */
function unwrap(s: AnySchema): AnySchema {
  for (;;) {
    const next = inner(s) ?? (s instanceof z.ZodPrefault ? s.unwrap() : s instanceof z.ZodPipe ? s.in : undefined);
    if (!next) return s;
    s = next as AnySchema;
  }
}

export function isIgnored(s: AnySchema): boolean {
  for (let cur: AnySchema | undefined = s; cur; cur = inner(cur)) if (cur.description === IGNORED) return true;
  return false;
}

export function child(s: AnySchema, seg: string | number): AnySchema | undefined {
  const u = unwrap(s);
  if (u instanceof z.ZodObject) return u.shape[String(seg)] as AnySchema | undefined;
  if (u instanceof z.ZodArray && typeof seg === 'number') return u.element as AnySchema;
  if (u instanceof z.ZodRecord) return u.valueType as AnySchema;
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
  if (u instanceof z.ZodArray) u = unwrap(u.element as AnySchema);
  return u instanceof z.ZodObject ? Object.keys(u.shape) : [];
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
    else if (!(unwrap(c) instanceof z.ZodRecord)) out.push(...ignoredFieldsIn(c, v, [...path, seg]));
  }
  return out;
}
