import { UserError } from '../util/errors.js';

/** Rejects keys that would escape the store root or mean different things on different providers. */
export function assertKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((s) => s === '..' || s === '.' || s === '') || key.includes('\0')) {
    throw new UserError(`invalid object key "${key}"`, 'keys are relative POSIX paths without empty, "." or ".." segments');
  }
}

/** Splits a byte count into parts no smaller than `minPartSize` and few enough for `maxParts`. */
export function partSizeFor(requested: number, limits: { minPartSize: number; maxPartSize: number }, expectedSize?: number, maxParts?: number): number {
  let size = Math.max(requested, limits.minPartSize);
  if (expectedSize !== undefined && maxParts) size = Math.max(size, Math.ceil(expectedSize / maxParts));
  return Math.min(size, limits.maxPartSize);
}
