/**
 * A small validator for the structural OpenAPI v3 schemas of CustomResourceDefinitions, so the tests
 * can check objects against deploy/'s CRD without an API server (none runs here) and without a JSON
 * Schema package (none is installed). It follows the API server's documented behaviour for the
 * keywords the CRD uses; unknown fields are errors, as with `kubectl apply --validate=strict`. A CEL
 * rule it does not know makes it throw, so a new rule cannot pass unchecked.
 */

export interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  minLength?: number;
  format?: string;
  anyOf?: Schema[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-validations'?: { rule: string; message: string }[];
  [other: string]: unknown;
}

/** Every problem with `value`, as "path: message" lines; empty when it is valid. */
export function validate(schema: Schema, value: unknown, path = ''): string[] {
  const at = (m: string) => [`${path || '<root>'}: ${m}`];
  if (value === undefined || value === null) return at('is empty');
  if (schema['x-kubernetes-int-or-string']) {
    if (typeof value !== 'string' && !Number.isInteger(value)) return at('must be an integer or a string');
  } else if (schema.anyOf) {
    if (!schema.anyOf.some((s) => validate(s, value, path).length === 0)) return at('matches none of anyOf');
  }
  const errors: string[] = [];
  switch (schema.type) {
    case 'object':
      if (typeof value !== 'object' || Array.isArray(value)) return at('must be an object');
      break;
    case 'array':
      if (!Array.isArray(value)) return at('must be an array');
      value.forEach((v, i) => errors.push(...validate(schema.items ?? {}, v, `${path}[${i}]`)));
      break;
    case 'string':
      if (typeof value !== 'string') return at('must be a string');
      if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(...at(`shorter than ${schema.minLength}`));
      if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) errors.push(...at(`does not match ${schema.pattern}`));
      if (schema.format === 'date-time' && Number.isNaN(Date.parse(value))) errors.push(...at('is not a date-time'));
      break;
    case 'integer':
      if (!Number.isInteger(value)) return at('must be an integer');
      break;
    case 'boolean':
      if (typeof value !== 'boolean') return at('must be a boolean');
      break;
    case undefined:
      break;
    default:
      throw new Error(`validator: type ${schema.type} not handled`);
  }
  if (schema.enum && !schema.enum.includes(value)) errors.push(...at(`must be one of ${schema.enum.join(', ')}`));
  if (schema.minimum !== undefined && typeof value === 'number' && value < schema.minimum) errors.push(...at(`must be at least ${schema.minimum}`));
  // The API server validates ObjectMeta itself; a CRD schema only says `metadata: {type: object}`.
  if (schema.type === 'object' && path !== 'metadata') {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? []) if (!(r in obj)) errors.push(`${path ? `${path}.` : ''}${r}: required`);
    for (const [k, v] of Object.entries(obj)) {
      const p = path ? `${path}.${k}` : k;
      const sub = schema.properties?.[k] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      if (sub) errors.push(...validate(sub, v, p));
      else if (!schema['x-kubernetes-preserve-unknown-fields'] && schema.additionalProperties !== true) errors.push(`${p}: unknown field`);
    }
  }
  for (const rule of schema['x-kubernetes-validations'] ?? []) if (!celRule(rule.rule, value)) errors.push(...at(rule.message));
  return errors;
}

/** The CEL rules the CRD uses, evaluated; anything else is refused. */
function celRule(rule: string, self: unknown): boolean {
  const has = /^!has\(self\.(\w+)\)$/.exec(rule);
  if (has) return !(has[1] in (self as Record<string, unknown>));
  const startsWith = /^!self\.exists\((\w+), \1\.startsWith\('([^']*)'\)\)$/.exec(rule);
  if (startsWith) return !(self as string[]).some((a) => a.startsWith(startsWith[2]));
  throw new Error(`validator: CEL rule not handled: ${rule}`);
}
