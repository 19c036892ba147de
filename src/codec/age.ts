/**
 * Client-side encryption in the age v1 format (https://age-encryption.org/v1), so that anyone
 * with the key can decrypt an object with the standard `age` tool, without pgark.
 *
 * The header (recipient stanzas, X25519 wrapping, the header MAC) comes from the `age-encryption`
 * library through its public API: a Recipient object of ours receives the file key the library
 * draws, which is how the payload is then keyed. The payload STREAM (64 KiB chunks,
 * ChaCha20-Poly1305) is Node's native OpenSSL cipher instead of the library's: the library only
 * streams through WHATWG ReadableStreams with a pure-JavaScript cipher, several times slower than
 * OpenSSL, and archiving cannot spend that. Passphrase (scrypt) stanzas are also ours, with
 * Node's native scrypt: the library's pure-JavaScript scrypt takes seconds per object at age's
 * work factor. Memory is one chunk per stream, whatever the object's size.
 *
 * X25519 stanzas do not name their recipient (age hides it on purpose), so pgark adds a
 * `pgark.io/recipients` stanza listing the recipients' public keys: a reader without a matching
 * identity can then say which key the object needs. `age` ignores stanzas it does not know.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, scrypt as scryptCb } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import { Decrypter, Encrypter, Stanza, identityToRecipient, type Identity, type Recipient } from 'age-encryption';
import { PgarkError, UserError } from '../util/errors.js';

/** The key suffix of an encrypted object, after the codec's (data.tar.zst.age). */
export const AGE_EXTENSION = '.age';

/** Keys as config resolves them from a Secret. Values are secrets (except recipients): never print them. */
export interface AgeKeys {
  /** age1... public keys new objects are encrypted for. */
  recipients: string[];
  /** Encrypt for this passphrase instead (scrypt), when there are no recipients; also tried when reading. */
  passphrase?: string;
  /** AGE-SECRET-KEY-1... keys to read with; empty on a machine that only writes. */
  identities: string[];
  /** log2 of scrypt's N when encrypting for a passphrase; age's default is 18. */
  scryptWorkFactor?: number;
}

/** An object the keys cannot decrypt: no identity matches, or the bytes are not intact age. */
export class AgeDecryptError extends PgarkError {}

const CHUNK = 64 * 1024;
const TAG = 16;
const NONCE = 16;
const MAGIC = 'age-encryption.org/v1\n';
const LABEL_STANZA = 'pgark.io/recipients';
/** age's own ceiling when decrypting: a larger work factor in a header would stall the reader. */
const MAX_SCRYPT_WORK_FACTOR = 22;
const DEFAULT_SCRYPT_WORK_FACTOR = 18;
/** Far above any header pgark or age writes; a reader never waits for more than this without a MAC line. */
const MAX_HEADER = 64 * 1024;
const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number, opts: object) => Promise<Buffer>;

/** Checks the keys' syntax; errors name the key by position and kind, never its value. */
export async function checkAgeKeys(keys: AgeKeys): Promise<void> {
  if (keys.recipients.length === 0 && keys.passphrase === undefined && keys.identities.length === 0) throw new UserError('age keys: no recipient, identity or passphrase');
  keys.recipients.forEach((r, i) => {
    try {
      new Encrypter().addRecipient(r);
    } catch {
      throw new UserError(`age recipient #${i + 1} is not an age1... X25519 public key`, 'one recipient per line, as age-keygen -y prints them');
    }
  });
  for (const [i, id] of keys.identities.entries()) {
    try {
      if (!id.startsWith('AGE-SECRET-KEY-1')) throw new Error();
      await identityToRecipient(id);
    } catch {
      throw new UserError(`age identity #${i + 1} is not an AGE-SECRET-KEY-1... key`, 'one identity per line, as age-keygen writes them (comment lines start with #)');
    }
  }
  const logN = keys.scryptWorkFactor;
  if (logN !== undefined && (!Number.isInteger(logN) || logN < 10 || logN > MAX_SCRYPT_WORK_FACTOR)) {
    throw new UserError(`scrypt work factor must be an integer 10-${MAX_SCRYPT_WORK_FACTOR}, got ${logN}`);
  }
}

/** The recipients (public keys) the identities answer for: safe to print. */
export async function identityRecipients(keys: AgeKeys): Promise<string[]> {
  return Promise.all(keys.identities.map((id) => identityToRecipient(id)));
}

function scryptKey(passphrase: string, salt: Buffer, logN: number): Promise<Buffer> {
  const label = Buffer.concat([Buffer.from('age-encryption.org/v1/scrypt'), salt]);
  const N = 2 ** logN;
  return scrypt(passphrase, label, 32, { N, r: 8, p: 1, maxmem: 129 * N * 8 + 1024 * 1024 });
}

/** Ciphertext and tag, as separate buffers: pushed as they are, they need no concatenation. */
function chachaSealParts(key: Uint8Array, nonce: Buffer, plain: Uint8Array): [Buffer, Buffer] {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
  const out = c.update(plain);
  c.final();
  return [out, c.getAuthTag()];
}

function chachaSeal(key: Uint8Array, nonce: Buffer, plain: Uint8Array): Buffer {
  return Buffer.concat(chachaSealParts(key, nonce, plain));
}

/** Decrypts one sealed box; undefined when the key or the box is wrong. */
function chachaOpen(key: Uint8Array, nonce: Buffer, sealed: Uint8Array): Buffer | undefined {
  if (sealed.length < TAG) return undefined;
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  try {
    const plain = d.update(sealed.subarray(0, sealed.length - TAG));
    // final() authenticates and, for a stream cipher, adds no bytes.
    d.final();
    return plain;
  } catch {
    return undefined;
  }
}

const ZERO_NONCE = Buffer.alloc(12);

class PassphraseRecipient implements Recipient {
  constructor(
    private readonly passphrase: string,
    private readonly logN: number,
  ) {}
  async wrapFileKey(fileKey: Uint8Array): Promise<Stanza[]> {
    const salt = randomBytes(16);
    const key = await scryptKey(this.passphrase, salt, this.logN);
    return [new Stanza(['scrypt', salt.toString('base64').replace(/=+$/, ''), String(this.logN)], chachaSeal(key, ZERO_NONCE, fileKey))];
  }
}

class PassphraseIdentity implements Identity {
  constructor(private readonly passphrase: string) {}
  async unwrapFileKey(stanzas: Stanza[]): Promise<Uint8Array | null> {
    const s = stanzas.find((x) => x.args[0] === 'scrypt');
    // age's rule: a passphrase-encrypted file has exactly one stanza, so no one can add a recipient to it.
    if (!s || stanzas.length !== 1 || s.args.length !== 3) return null;
    const logN = Number(s.args[2]);
    if (!/^[1-9]\d*$/.test(s.args[2]) || logN > MAX_SCRYPT_WORK_FACTOR) throw new AgeDecryptError(`scrypt work factor ${s.args[2]} is above ${MAX_SCRYPT_WORK_FACTOR}`);
    const key = await scryptKey(this.passphrase, Buffer.from(s.args[1], 'base64'), logN);
    return chachaOpen(key, ZERO_NONCE, s.body) ?? null;
  }
}

/** Records the file key the library draws and names the X25519 recipients in the header. */
class FileKeyTap implements Recipient {
  fileKey?: Uint8Array;
  constructor(private readonly named: string[]) {}
  wrapFileKey(fileKey: Uint8Array): Stanza[] {
    this.fileKey = fileKey;
    return this.named.length ? [new Stanza([LABEL_STANZA, ...this.named], new Uint8Array(0))] : [];
  }
}

/** A fresh age header and its file key, for one object. */
async function newHeader(keys: AgeKeys): Promise<{ header: Buffer; fileKey: Uint8Array }> {
  const e = new Encrypter();
  if (keys.recipients.length) {
    for (const r of keys.recipients) e.addRecipient(r);
  } else if (keys.passphrase !== undefined) {
    e.addRecipient(new PassphraseRecipient(keys.passphrase, keys.scryptWorkFactor ?? DEFAULT_SCRYPT_WORK_FACTOR));
  } else {
    throw new UserError('cannot encrypt: the encryption Secret has no recipients and no passphrase', 'add a "recipients" key (age1... public keys, one per line)');
  }
  const tap = new FileKeyTap(keys.recipients);
  e.addRecipient(tap);
  // The library encrypts an empty payload after the header: its 16-byte nonce and one 16-byte tag.
  const whole = await e.encrypt(new Uint8Array(0));
  if (!tap.fileKey) throw new Error('age-encryption did not hand its file key to the recipients');
  return { header: Buffer.from(whole.subarray(0, whole.length - NONCE - TAG)), fileKey: tap.fileKey };
}

function payloadKey(fileKey: Uint8Array, nonce: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
}

/** STREAM nonce: 11-byte big-endian chunk counter, then 1 on the last chunk. */
function chunkNonce(counter: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  n.writeUIntBE(counter, 5, 6);
  n[11] = last ? 1 : 0;
  return n;
}

/**
 * Cuts arbitrary writes into fixed-size chunks; a full chunk is released only once more input
 * proves it is not the last. Whole chunks of a large write are processed in place; only the
 * remainder is copied into the staging buffer.
 */
abstract class ChunkedTransform extends Transform {
  private readonly staged: Buffer;
  private used = 0;
  protected counter = 0;

  constructor(private readonly size: number) {
    super();
    this.staged = Buffer.allocUnsafe(size);
  }

  protected absorb(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      if (this.used === this.size) {
        this.release(this.staged, false);
        this.used = 0;
      }
      if (this.used === 0 && data.length - at > this.size) {
        this.release(data.subarray(at, at + this.size), false);
        at += this.size;
        continue;
      }
      const n = Math.min(this.size - this.used, data.length - at);
      data.copy(this.staged, this.used, at, at + n);
      this.used += n;
      at += n;
    }
  }

  protected finishChunks(): void {
    this.release(this.staged.subarray(0, this.used), true);
  }

  private release(data: Buffer, last: boolean): void {
    for (const part of this.chunk(data, last)) this.push(part);
    this.counter++;
  }

  /** The output of chunk number this.counter. */
  protected abstract chunk(data: Buffer, last: boolean): Buffer[];
}

/** Runs a step and reports to the stream callback, sync or async alike. */
function settle(step: () => void | Promise<void>, cb: TransformCallback, label: (err: unknown) => Error = (e) => e as Error): void {
  try {
    const r = step();
    if (r) r.then(() => cb(), (err: unknown) => cb(label(err)));
    else cb();
  } catch (err) {
    cb(label(err));
  }
}

class AgeEncryptStream extends ChunkedTransform {
  private key?: Buffer;

  constructor(private readonly keys: AgeKeys) {
    super(CHUNK);
  }

  private async start(): Promise<void> {
    if (this.key) return;
    const { header, fileKey } = await newHeader(this.keys);
    const nonce = randomBytes(NONCE);
    this.key = payloadKey(fileKey, nonce);
    this.push(Buffer.concat([header, nonce]));
  }

  override _transform(data: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    settle(() => (this.key ? this.absorb(data) : this.start().then(() => this.absorb(data))), cb);
  }

  override _flush(cb: TransformCallback): void {
    settle(() => this.start().then(() => this.finishChunks()), cb);
  }

  protected chunk(data: Buffer, last: boolean): Buffer[] {
    return chachaSealParts(this.key!, chunkNonce(this.counter, last), data);
  }
}

/** Names the object's recipients and the reader's identities, for the "no identity matched" error. */
async function noMatchMessage(headerText: string, keys: AgeKeys, what: string): Promise<AgeDecryptError> {
  const lines = headerText.split('\n').filter((l) => l.startsWith('-> '));
  const named = lines.find((l) => l.startsWith(`-> ${LABEL_STANZA} `))?.split(' ').slice(2) ?? [];
  const types = [...new Set(lines.map((l) => l.split(' ')[1]).filter((t) => t !== LABEL_STANZA))];
  const needs = named.length ? named.join(', ') : types.includes('scrypt') ? 'a passphrase (scrypt)' : `recipients of type ${types.join(', ') || 'none'} (not named in the header)`;
  const mine = await identityRecipients(keys);
  const have = [...mine, ...(keys.passphrase !== undefined ? ['a passphrase'] : [])];
  return new AgeDecryptError(
    `${what} is encrypted for ${needs}; your identities: ${have.length ? have.join(', ') : 'none'}`,
    1,
    'list an identity (AGE-SECRET-KEY-1...) of one of those recipients under "identity" in the encryption Secret',
  );
}

class AgeDecryptStream extends ChunkedTransform {
  private header: Buffer[] = [];
  private headerBytes = 0;
  private key?: Buffer;

  constructor(
    private readonly keys: AgeKeys,
    private readonly what: string,
  ) {
    super(CHUNK + TAG);
  }

  override _transform(data: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    settle(() => (this.key ? this.absorb(data) : this.readHeader(data)), cb, (err) => this.labelled(err));
  }

  override _flush(cb: TransformCallback): void {
    if (!this.key) return cb(new AgeDecryptError(`${this.what} is truncated: the age header is incomplete`));
    settle(() => this.finishChunks(), cb, (err) => this.labelled(err));
  }

  private labelled(err: unknown): Error {
    return err instanceof PgarkError ? err : new AgeDecryptError(`${this.what} cannot be decrypted: ${(err as Error).message}`);
  }

  private async readHeader(data: Buffer): Promise<void> {
    this.header.push(data);
    this.headerBytes += data.length;
    const all = Buffer.concat(this.header);
    this.header = [all];
    const probe = all.subarray(0, MAGIC.length).toString('latin1');
    if (!MAGIC.startsWith(probe)) throw new AgeDecryptError(`${this.what} is not age-encrypted (it does not start with "age-encryption.org/v1")`);
    const mac = all.indexOf('\n--- ');
    const end = mac < 0 ? -1 : all.indexOf('\n', mac + 1);
    if (end < 0 || all.length < end + 1 + NONCE) {
      if (this.headerBytes > MAX_HEADER) throw new AgeDecryptError(`${this.what}: age header longer than ${MAX_HEADER} bytes`);
      return;
    }
    const header = all.subarray(0, end + 1);
    const d = new Decrypter();
    for (const id of this.keys.identities) d.addIdentity(id);
    if (this.keys.passphrase !== undefined) d.addIdentity(new PassphraseIdentity(this.keys.passphrase));
    let fileKey: Uint8Array;
    try {
      fileKey = await d.decryptHeader(header);
    } catch (err) {
      if (/no identity matched/.test((err as Error).message)) throw await noMatchMessage(header.toString('latin1'), this.keys, this.what);
      throw err;
    }
    this.key = payloadKey(fileKey, all.subarray(end + 1, end + 1 + NONCE));
    this.header = [];
    this.absorb(all.subarray(end + 1 + NONCE));
  }

  protected chunk(data: Buffer, last: boolean): Buffer[] {
    // Only the very first chunk may be empty (an empty object); a chunk that fails is corrupt or cut short.
    const plain = data.length === TAG && this.counter > 0 ? undefined : chachaOpen(this.key!, chunkNonce(this.counter, last), data);
    if (!plain) throw new AgeDecryptError(`${this.what} is corrupt or truncated: chunk ${this.counter} does not authenticate`);
    return [plain];
  }
}

/**
 * One whole buffer encrypted (a WAL segment on the archiver's worker thread): the same bytes as
 * encryptStream, without a stream's per-chunk machinery, which costs more than the cipher here.
 */
export async function encryptWhole(data: Buffer, keys: AgeKeys): Promise<Buffer> {
  const { header, fileKey } = await newHeader(keys);
  const nonce = randomBytes(NONCE);
  const key = payloadKey(fileKey, nonce);
  const chunks = Math.max(1, Math.ceil(data.length / CHUNK));
  const parts: Buffer[] = [header, nonce];
  for (let i = 0; i < chunks; i++) parts.push(...chachaSealParts(key, chunkNonce(i, i === chunks - 1), data.subarray(i * CHUNK, (i + 1) * CHUNK)));
  return Buffer.concat(parts);
}

/** A Transform that encrypts everything written to it into one age file for the keys' recipients (or passphrase). */
export function encryptStream(keys: AgeKeys): Transform {
  return new AgeEncryptStream(keys);
}

/** A Transform that decrypts one age file with the keys' identities; `what` names the object in errors. */
export function decryptStream(keys: AgeKeys, what = 'object'): Transform {
  return new AgeDecryptStream(keys, what);
}

