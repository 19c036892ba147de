/**
 * A CommonJS package loaded when first used instead of when its importer loads. The native codecs
 * and the CRC library are napi-rs modules: loading one maps its library and sets up its runtime
 * (snappy and lz4-napi together: 11 MiB resident and 30-45 ms of CPU per process, and again per
 * worker isolate), which every process that loads the codec layer paid whatever codec it used.
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

export function lazyRequire<T>(specifier: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= load(specifier) as T);
}
