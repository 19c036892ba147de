/**
 * Client-side encryption in the age v1 format (https://age-encryption.org/v1), so that anyone
 * with the key can decrypt an object with the standard `age` tool, without pgark.
 *
 * Everything written is native (node:crypto, OpenSSL): the header's X25519 key agreement, HKDF,
 * HMAC and scrypt, and the payload STREAM (64 KiB chunks, ChaCha20-Poly1305). The
 * `age-encryption` library's pure-JavaScript curve cost ~2.5 ms per object (as much as sealing ~3 MB
 * of payload), its cipher is several times slower than OpenSSL and streams only
 * through WHATWG ReadableStreams, and its scrypt takes seconds at age's work factor. Reading
 * headers (and turning identities into recipients) still goes through the library's public API;
 * the interop tests check every byte written against the `age` binary. Memory is one chunk per
 * stream, whatever the object's size.
 *
 * X25519 stanzas do not name their recipient (age hides it on purpose), so pgark adds a
 * `pgark.io/recipients` stanza listing the recipients' public keys: a reader without a matching
 * identity can then say which key the object needs. `age` ignores stanzas it does not know.
 */
import { createCipheriv, createDecipheriv, createHmac, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, scrypt as scryptCb } from 'node:crypto';
import { Duplex, PassThrough, Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import type { Identity, Stanza } from 'age-encryption';
import { PgarkError, UserError } from '../util/errors.js';

/**
 * The age library reads headers and derives recipients; it is loaded on first use because importing
 * it costs about 90 ms of CPU, which every pgark process (each archive_command call among them)
 * would pay even when nothing is encrypted.
 */
let ageLibrary: Promise<typeof import('age-encryption')> | undefined;
const loadAge = () => (ageLibrary ??= import('age-encryption'));

export { AGE_EXTENSION } from './types.js';

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
    if (!x25519RecipientKey(r)) {
      throw new UserError(`age recipient #${i + 1} is not an age1... X25519 public key`, 'one recipient per line, as age-keygen -y prints them');
    }
  });
  for (const [i, id] of keys.identities.entries()) {
    try {
      if (!id.startsWith('AGE-SECRET-KEY-1')) throw new Error();
      await (await loadAge()).identityToRecipient(id);
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
  const { identityToRecipient } = await loadAge();
  return Promise.all(keys.identities.map((id) => identityToRecipient(id)));
}

function scryptKey(passphrase: string, salt: Buffer, logN: number): Promise<Buffer> {
  const label = Buffer.concat([Buffer.from('age-encryption.org/v1/scrypt'), salt]);
  const N = 2 ** logN;
  return scrypt(passphrase, label, 32, { N, r: 8, p: 1, maxmem: 129 * N * 8 + 1024 * 1024 });
}

function chachaSeal(key: Uint8Array, nonce: Buffer, plain: Uint8Array): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
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

const HEADER_KEY_INFO = 'header';
const X25519_INFO = 'age-encryption.org/v1/X25519';
/** DER SubjectPublicKeyInfo of an X25519 key, up to the 32 raw key bytes. */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const BECH32 = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';

function bech32Polymod(values: number[]): number {
  const gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= gen[i];
  }
  return chk;
}

/** The 32-byte X25519 key of an age1... recipient (Bech32, checksum verified); undefined if it is not one. */
function x25519RecipientKey(recipient: string): Buffer | undefined {
  const s = recipient.toLowerCase();
  if (s !== recipient && recipient.toUpperCase() !== recipient) return undefined;
  const sep = s.lastIndexOf('1');
  if (s.slice(0, sep) !== 'age') return undefined;
  const data = [...s.slice(sep + 1)].map((c) => BECH32.indexOf(c));
  if (data.length < 6 || data.includes(-1)) return undefined;
  const hrp = [...'age'].map((c) => c.charCodeAt(0));
  if (bech32Polymod([...hrp.map((c) => c >> 5), 0, ...hrp.map((c) => c & 31), ...data]) !== 1) return undefined;
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const v of data.slice(0, -6)) {
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((acc >> bits) & 0xff);
    }
  }
  if (bits >= 5 || (acc & ((1 << bits) - 1)) !== 0 || bytes.length !== 32) return undefined;
  return Buffer.from(bytes);
}

/** age's stanza body encoding: unpadded base64 in 64-column lines, the last one always shorter (possibly empty). */
function stanza(args: string[], body: Uint8Array): string {
  const b64 = Buffer.from(body).toString('base64').replace(/=+$/, '');
  let text = `-> ${args.join(' ')}\n`;
  for (let i = 0; i <= b64.length; i += 64) text += `${b64.slice(i, i + 64)}\n`;
  return text;
}

function unpadded(b: Uint8Array): string {
  return Buffer.from(b).toString('base64').replace(/=+$/, '');
}

/** An X25519 stanza: an ephemeral key agreement wraps the file key for one recipient. */
function x25519Stanza(recipient: string, fileKey: Buffer): string {
  const theirs = x25519RecipientKey(recipient);
  if (!theirs) throw new UserError('cannot encrypt: an age recipient is not an age1... X25519 public key', 'one recipient per line, as age-keygen -y prints them');
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const share = publicKey.export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI_PREFIX.length);
  const secret = diffieHellman({ privateKey, publicKey: createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, theirs]), format: 'der', type: 'spki' }) });
  // age's rule against low-order points: an all-zero shared secret wraps nothing.
  if (secret.every((b) => b === 0)) throw new UserError('cannot encrypt: an age recipient is a low-order X25519 point');
  const wrapKey = Buffer.from(hkdfSync('sha256', secret, Buffer.concat([share, theirs]), X25519_INFO, 32));
  return stanza(['X25519', unpadded(share)], chachaSeal(wrapKey, ZERO_NONCE, fileKey));
}

async function scryptStanza(passphrase: string, logN: number, fileKey: Buffer): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptKey(passphrase, salt, logN);
  return stanza(['scrypt', unpadded(salt), String(logN)], chachaSeal(key, ZERO_NONCE, fileKey));
}

/**
 * A fresh age header and its file key, for one object (a file key is never reused: age's rule).
 * Native X25519, HKDF and HMAC: ~0.6 ms per object, where the library's curve took ~2.5 ms.
 */
async function newHeader(keys: AgeKeys): Promise<{ header: Buffer; fileKey: Buffer }> {
  const fileKey = randomBytes(16);
  let stanzas: string;
  if (keys.recipients.length) {
    // X25519 stanzas do not say whose they are: the pgark.io/recipients stanza does (see the file header).
    stanzas = keys.recipients.map((r) => x25519Stanza(r, fileKey)).join('') + stanza([LABEL_STANZA, ...keys.recipients], new Uint8Array(0));
  } else if (keys.passphrase !== undefined) {
    stanzas = await scryptStanza(keys.passphrase, keys.scryptWorkFactor ?? DEFAULT_SCRYPT_WORK_FACTOR, fileKey);
  } else {
    throw new UserError('cannot encrypt: the encryption Secret has no recipients and no passphrase', 'add a "recipients" key (age1... public keys, one per line)');
  }
  const signed = `${MAGIC}${stanzas}---`;
  const macKey = Buffer.from(hkdfSync('sha256', fileKey, Buffer.alloc(0), HEADER_KEY_INFO, 32));
  const mac = createHmac('sha256', macKey).update(signed, 'latin1').digest();
  return { header: Buffer.from(`${signed} ${unpadded(mac)}\n`, 'latin1'), fileKey };
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
 * Seals `plain` as consecutive STREAM chunks, the first numbered `counter`, handing each
 * ciphertext and tag to `emit` as the cipher returns them; `final`: the last chunk ends the object
 * (an empty `plain` is then one empty chunk). Node's cipher cannot write into a given buffer, so
 * a stream passes the pieces on as they are: copying them into one buffer per write cost more
 * (a large allocation and a copy) than the extra pieces cost downstream.
 */
function sealChunks(key: Buffer, plain: Uint8Array, counter: number, final: boolean, emit: (piece: Buffer) => void): void {
  const chunks = final ? Math.max(1, Math.ceil(plain.length / CHUNK)) : plain.length / CHUNK;
  for (let i = 0; i < chunks; i++) {
    const c = createCipheriv('chacha20-poly1305', key, chunkNonce(counter + i, final && i === chunks - 1), { authTagLength: TAG });
    emit(c.update(plain.subarray(i * CHUNK, (i + 1) * CHUNK)));
    c.final();
    emit(c.getAuthTag());
  }
}

/**
 * Cuts arbitrary writes into fixed-size chunks, numbered from 0, for `release`; a full chunk is
 * released only once more input proves it is not the last. Whole chunks of a large write are
 * released in place; only the remainder is copied into the staging buffer.
 */
class Chunker {
  private readonly staged: Buffer;
  private used = 0;
  private counter = 0;

  constructor(
    private readonly size: number,
    private readonly release: (data: Buffer, counter: number, last: boolean) => void,
  ) {
    this.staged = Buffer.allocUnsafe(size);
  }

  add(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      if (this.used === this.size) {
        this.emit(this.staged, false);
        this.used = 0;
      }
      if (this.used === 0 && data.length - at > this.size) {
        this.emit(data.subarray(at, at + this.size), false);
        at += this.size;
        continue;
      }
      const n = Math.min(this.size - this.used, data.length - at);
      data.copy(this.staged, this.used, at, at + n);
      this.used += n;
      at += n;
    }
  }

  finish(): void {
    this.emit(this.staged.subarray(0, this.used), true);
  }

  private emit(data: Buffer, last: boolean): void {
    this.release(data, this.counter++, last);
  }
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

/**
 * Bytes written go through `source` (a compressor, or a PassThrough) and come out as one age
 * file. The source's output is sealed as it is emitted, each chunk's ciphertext and tag pushed as
 * the cipher returns them, so no stream in between re-buffers or concatenates them; backpressure
 * on this stream pauses the source.
 */
class AgeEncryptStream extends Duplex {
  private chunker?: Chunker;
  /** false once a push was refused, until the reader asks for more. */
  private more = true;
  private ended?: TransformCallback;

  constructor(
    private readonly keys: AgeKeys,
    private readonly source: Transform,
  ) {
    super();
    source.on('error', (err: Error) => this.destroy(err));
  }

  /** Writes the header; only then is the source read (a compressor may emit its own header before any input). */
  private async start(): Promise<void> {
    if (this.chunker) return;
    const { header, fileKey } = await newHeader(this.keys);
    const nonce = randomBytes(NONCE);
    const key = payloadKey(fileKey, nonce);
    const push = (piece: Buffer) => {
      this.more = this.push(piece);
    };
    const chunker = new Chunker(CHUNK, (data, counter, last) => sealChunks(key, data, counter, last, push));
    this.chunker = chunker;
    this.push(Buffer.concat([header, nonce]));
    this.source.on('data', (d: Buffer) => {
      chunker.add(d);
      if (!this.more) this.source.pause();
    });
    this.source.on('end', () => {
      chunker.finish();
      this.push(null);
      this.ended?.();
    });
  }

  override _write(data: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const forward = () => (this.source.write(data) ? cb() : this.source.once('drain', () => cb()));
    if (this.chunker) forward();
    else this.start().then(forward, cb);
  }

  override _final(cb: TransformCallback): void {
    this.start().then(() => {
      this.ended = cb;
      this.source.end();
    }, cb);
  }

  override _read(): void {
    this.more = true;
    // Before the header, resuming would let the source's early output flow to no listener.
    if (this.chunker) this.source.resume();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.source.destroy(err ?? undefined);
    cb(err);
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

class AgeDecryptStream extends Transform {
  private header: Buffer[] = [];
  private headerBytes = 0;
  /** Set once the header is read: the payload key is known. */
  private chunker?: Chunker;

  constructor(
    private readonly keys: AgeKeys,
    private readonly what: string,
  ) {
    super();
  }

  override _transform(data: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    settle(() => (this.chunker ? this.chunker.add(data) : this.readHeader(data)), cb, (err) => this.labelled(err));
  }

  override _flush(cb: TransformCallback): void {
    if (!this.chunker) return cb(new AgeDecryptError(`${this.what} is truncated: the age header is incomplete`));
    settle(() => this.chunker!.finish(), cb, (err) => this.labelled(err));
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
    const d = new (await loadAge()).Decrypter();
    for (const id of this.keys.identities) d.addIdentity(id);
    if (this.keys.passphrase !== undefined) d.addIdentity(new PassphraseIdentity(this.keys.passphrase));
    let fileKey: Uint8Array;
    try {
      fileKey = await d.decryptHeader(header);
    } catch (err) {
      if (/no identity matched/.test((err as Error).message)) throw await noMatchMessage(header.toString('latin1'), this.keys, this.what);
      throw err;
    }
    const key = payloadKey(fileKey, all.subarray(end + 1, end + 1 + NONCE));
    this.chunker = new Chunker(CHUNK + TAG, (sealed, counter, last) => {
      // Only the very first chunk may be empty (an empty object); a chunk that fails is corrupt or cut short.
      const plain = sealed.length === TAG && counter > 0 ? undefined : chachaOpen(key, chunkNonce(counter, last), sealed);
      if (!plain) throw new AgeDecryptError(`${this.what} is corrupt or truncated: chunk ${counter} does not authenticate`);
      this.push(plain);
    });
    this.header = [];
    this.chunker.add(all.subarray(end + 1 + NONCE));
  }
}

/**
 * A stream that encrypts everything written to it into one age file for the keys' recipients
 * (or passphrase); with `source`, the bytes pass through it first (the compressor).
 */
export function encryptStream(keys: AgeKeys, source: Transform = new PassThrough()): Transform {
  return new AgeEncryptStream(keys, source) as unknown as Transform;
}

/** A Transform that decrypts one age file with the keys' identities; `what` names the object in errors. */
export function decryptStream(keys: AgeKeys, what = 'object'): Transform {
  return new AgeDecryptStream(keys, what);
}

