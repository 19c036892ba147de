/**
 * Client-side (age) encryption keys: the Secret a Cluster's `pgark.io/encryption` annotation (or the
 * plugin parameter encryptionSecret) names, read into the codec's AgeKeys. Keys of that Secret:
 * `recipients` (age1... public keys, one a line: what new objects are encrypted for), `identity`
 * (AGE-SECRET-KEY-1... lines: what objects are read with) and `passphrase`. Values never appear in
 * errors: those name the Secret, the key and the line.
 */
import { checkAgeKeys, type AgeKeys } from '../codec/age.js';
import { KubePermissionError } from './kube.js';
import type { ConfigContext } from './index.js';
import type { Cluster } from './types.js';
import { UserError } from '../util/errors.js';

export const ENCRYPTION_ANNOTATION = 'pgark.io/encryption';

/** Lines of a key, without blanks and # comments (age-keygen writes comment lines). */
function keyLines(text: string | undefined): string[] {
  return (text ?? '').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

/** The age keys of Secret `name`; `where` says who named it (for errors). */
export async function encryptionKeys(ctx: ConfigContext, name: string, namespace: string | undefined, where: string): Promise<AgeKeys> {
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
  const keys: AgeKeys = { recipients: keyLines(values.recipients), identities: keyLines(values.identity), passphrase: values.passphrase };
  try {
    await checkAgeKeys(keys);
  } catch (err) {
    throw new UserError(`${where}: Secret "${name}": ${(err as Error).message}`, (err as UserError).hint);
  }
  return keys;
}

/** The keys a Cluster's annotation names, or undefined when it has none (objects are written in the clear). */
export async function clusterEncryption(ctx: ConfigContext, cluster: Cluster): Promise<AgeKeys | undefined> {
  const name = cluster.metadata.annotations?.[ENCRYPTION_ANNOTATION];
  if (name === undefined) return undefined;
  const where = `Cluster "${cluster.metadata.name}" metadata.annotations["${ENCRYPTION_ANNOTATION}"]`;
  if (!name.trim()) throw new UserError(`${where} is empty`, 'set it to the name of the Secret holding the age keys');
  return encryptionKeys(ctx, name.trim(), cluster.metadata.namespace, where);
}
