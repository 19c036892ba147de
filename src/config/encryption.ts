/**
 * Client-side (age) encryption keys: the Secret a Cluster's `pgark.io/encryption` annotation (or the
 * plugin parameter encryptionSecret) names, read into the codec's AgeKeys. Keys of that Secret:
 * `recipients` (age1... public keys, one a line: what new objects are encrypted for), `identity`
 * (AGE-SECRET-KEY-1... lines: what objects are read with) and `passphrase`. Values never appear in
 * errors: those name the Secret, the key and the line.
 */
import { readFile } from 'node:fs/promises';
import { checkAgeKeys, type AgeKeys } from '../codec/age.js';
import { KubePermissionError } from './kube.js';
import type { SecretKeySelector } from './types.js';
import { UserError } from '../util/errors.js';

/** What this module needs of a ConfigContext (index.ts re-exports this module). */
interface SecretsContext {
  secrets: { get(selector: SecretKeySelector, namespace?: string): Promise<string> };
}

export const ENCRYPTION_ANNOTATION = 'pgark.io/encryption';

/** Lines of a key, without blanks and # comments (age-keygen writes comment lines). */
function keyLines(text: string | undefined): string[] {
  return (text ?? '').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

/** The age keys of Secret `name`; `where` says who named it (for errors). */
export async function encryptionKeys(ctx: SecretsContext, name: string, namespace: string | undefined, where: string): Promise<AgeKeys> {
  const values: Record<string, string | undefined> = {};
  let firstMissing: unknown;
  for (const key of ['recipients', 'identity', 'passphrase']) {
    try {
      values[key] = await ctx.secrets.get({ name, key }, namespace);
    } catch (err) {
      if (err instanceof KubePermissionError) throw err;
      firstMissing ??= err;
    }
  }
  if (values.recipients === undefined && values.identity === undefined && values.passphrase === undefined) {
    throw new UserError(`${where}: Secret "${name}" has none of the keys recipients, identity, passphrase (${(firstMissing as Error).message})`, 'create the Secret with a "recipients" key (age1... public keys, one per line) and, where restores run, an "identity" key');
  }
  return keysFromText(values, `${where}: Secret "${name}"`);
}

/** AgeKeys from the text of a recipients list, identity lines and a passphrase, checked. */
async function keysFromText(values: { recipients?: string; identity?: string; passphrase?: string }, where: string): Promise<AgeKeys> {
  const keys: AgeKeys = { recipients: keyLines(values.recipients), identities: keyLines(values.identity), passphrase: values.passphrase };
  try {
    await checkAgeKeys(keys);
  } catch (err) {
    throw new UserError(`${where}: ${(err as Error).message}`, (err as UserError).hint);
  }
  return keys;
}

/**
 * AgeKeys from files in age's own formats: a recipients file (`age -R`) and an identity file
 * (`age -i`, as age-keygen writes it). For the logical dump job and the restore tool, which take
 * their settings from the environment rather than from a Cluster.
 */
export async function ageKeysFromFiles(files: { recipients?: string; identity?: string }, where: string): Promise<AgeKeys> {
  const read = async (path: string | undefined, what: string): Promise<string | undefined> => {
    if (path === undefined) return undefined;
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      throw new UserError(`${where}: cannot read the age ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  return keysFromText({ recipients: await read(files.recipients, 'recipients'), identity: await read(files.identity, 'identity') }, where);
}

/** Which Secret holds a store's age keys, and the manifest field that named it (for errors). */
export interface EncryptionRef {
  secret: string;
  where: string;
}

/** The Secret a Cluster's annotation names, or undefined when it has none (objects are written in the clear). */
export function annotationEncryption(cluster: { metadata: { name: string; annotations?: Record<string, string> } }): EncryptionRef | undefined {
  const name = cluster.metadata.annotations?.[ENCRYPTION_ANNOTATION];
  if (name === undefined) return undefined;
  const where = `Cluster "${cluster.metadata.name}" metadata.annotations["${ENCRYPTION_ANNOTATION}"]`;
  if (!name.trim()) throw new UserError(`${where} is empty`, 'set it to the name of the Secret holding the age keys');
  return { secret: name.trim(), where };
}
