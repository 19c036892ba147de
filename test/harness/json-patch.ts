/**
 * A small RFC 6902 applier (add, remove, replace, test) for checking the patches the operator
 * plugin returns; no JSON-patch package is installed. Strict like the Go library CNPG uses
 * (evanphx/json-patch): a missing parent, a bad index or a failed test is an error.
 */
export interface PatchOperation {
  op: string;
  path: string;
  value?: unknown;
}

type Container = Record<string, unknown> | unknown[];

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new Error(`JSON pointer "${path}" must start with "/"`);
  return path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: unknown, tokens: string[], path: string): { parent: Container; key: string } {
  let cur: unknown = doc;
  for (const t of tokens.slice(0, -1)) {
    if (cur === null || typeof cur !== 'object') throw new Error(`${path}: parent "${t}" does not exist`);
    cur = Array.isArray(cur) ? cur[Number(t)] : (cur as Record<string, unknown>)[t];
  }
  if (cur === null || typeof cur !== 'object') throw new Error(`${path}: parent does not exist`);
  return { parent: cur as Container, key: tokens[tokens.length - 1] };
}

function index(arr: unknown[], key: string, path: string, allowEnd: boolean): number {
  if (key === '-' && allowEnd) return arr.length;
  if (!/^(0|[1-9]\d*)$/.test(key)) throw new Error(`${path}: "${key}" is not an array index`);
  const i = Number(key);
  if (i > arr.length || (!allowEnd && i === arr.length)) throw new Error(`${path}: index ${i} out of bounds`);
  return i;
}

/** The patched document (a deep copy); throws on the first operation that cannot apply. */
export function applyPatch<T>(document: T, ops: readonly PatchOperation[]): T {
  let doc: unknown = structuredClone(document);
  for (const op of ops) {
    const tokens = pointer(op.path);
    const value = structuredClone(op.value);
    if (tokens.length === 0) {
      if (op.op === 'add' || op.op === 'replace') doc = value;
      else throw new Error(`op ${op.op} on the whole document is not supported`);
      continue;
    }
    const { parent, key } = parentOf(doc, tokens, op.path);
    switch (op.op) {
      case 'add':
        if (Array.isArray(parent)) parent.splice(index(parent, key, op.path, true), 0, value);
        else parent[key] = value;
        break;
      case 'replace':
      case 'remove':
        if (Array.isArray(parent)) {
          const i = index(parent, key, op.path, false);
          if (op.op === 'remove') parent.splice(i, 1);
          else parent[i] = value;
        } else {
          if (!(key in parent)) throw new Error(`${op.path}: no member "${key}" to ${op.op}`);
          if (op.op === 'remove') delete parent[key];
          else parent[key] = value;
        }
        break;
      case 'test': {
        const have = Array.isArray(parent) ? parent[index(parent, key, op.path, false)] : parent[key];
        if (JSON.stringify(have) !== JSON.stringify(value)) throw new Error(`${op.path}: test failed`);
        break;
      }
      default:
        throw new Error(`unsupported op "${op.op}"`);
    }
  }
  return doc as T;
}
