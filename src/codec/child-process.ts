import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { Transform, type TransformCallback, type Readable, type Writable } from 'node:stream';
import { CodecProcessError, CorruptDataError } from './errors.js';

/** Keeps only the tail of a child's stderr: enough for an error message, bounded for a chatty tool. */
const STDERR_KEEP = 4096;

/**
 * A Transform that pipes bytes through an external program (stdin -> stdout).
 * Used for codecs that have no well-kept native npm binding here (bzip2, xz) and for lz4 decoding
 * (see lz4.ts). Memory stays bounded: stdout is paused whenever our readable side is full, and
 * stdin writes wait for 'drain'. A non-zero exit, a signal, or the tool leaving input unread
 * becomes a stream error carrying the tool's stderr.
 */
export class ChildProcessTransform extends Transform {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private stderrTail = '';
  private stdinFailed = false;
  private pendingWrite: ((err?: Error) => void) | undefined;
  private flushCallback: TransformCallback | undefined;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(
    private readonly codec: string,
    private readonly command: string,
    args: string[],
    /** Decoders report failures as corrupt input; encoders as tool failures. */
    private readonly decoding: boolean,
  ) {
    super();
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d: Buffer) => {
      if (!this.push(d)) this.child.stdout.pause();
    });
    this.child.stderr.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-STDERR_KEEP);
    });
    this.child.stdin.on('error', () => {
      // EPIPE: the tool quit before reading everything; its exit status (or this flag) explains why.
      this.stdinFailed = true;
      this.releasePendingWrite();
    });
    this.child.stdin.on('drain', () => this.releasePendingWrite());
    this.child.on('error', (err) => this.fail(new CodecProcessError(`cannot run ${command} for ${codec}: ${err.message}`)));
    this.child.on('close', (code, signal) => this.onExit(code, signal));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.exited) {
      callback(this.exitError() ?? this.describe('stopped reading its input before the end (trailing data?)'));
      return;
    }
    if (this.stdinFailed) {
      // The tool quit without reading this: its exit status and stderr (onExit) say why, and a
      // decoder's failure is then reported as corrupt input rather than as a bare broken pipe.
      this.pendingWrite = callback;
      return;
    }
    if (this.child.stdin.write(chunk)) callback();
    else this.pendingWrite = callback;
  }

  override _flush(callback: TransformCallback): void {
    this.flushCallback = callback;
    this.child.stdin.end();
    if (this.exited) this.onExit(this.exited.code, this.exited.signal);
  }

  override _read(size: number): void {
    this.child.stdout.resume();
    super._read(size);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.exited) this.child.kill();
    callback(err);
  }

  private releasePendingWrite(): void {
    const cb = this.pendingWrite;
    this.pendingWrite = undefined;
    cb?.();
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.exited = { code, signal };
    const err = this.exitError() ?? (this.stdinFailed ? this.describe('stopped reading its input before the end (trailing data?)') : undefined);
    if (err) {
      this.fail(err);
      return;
    }
    const cb = this.flushCallback;
    this.flushCallback = undefined;
    cb?.();
  }

  private exitError(): Error | undefined {
    const ex = this.exited;
    if (!ex || (ex.code === 0 && !ex.signal)) return undefined;
    return this.describe(ex.signal ? `was killed by ${ex.signal}` : `exited with code ${ex.code}`);
  }

  private describe(what: string): Error {
    const detail = `${this.command} ${what}${this.stderrTail ? `: ${this.stderrTail.trim()}` : ''}`;
    return this.decoding ? new CorruptDataError(this.codec, detail) : new CodecProcessError(`${this.codec} compression failed: ${detail}`);
  }

  private fail(err: Error): void {
    const cb = this.flushCallback;
    this.flushCallback = undefined;
    this.releasePendingWrite();
    if (cb) cb(err);
    else this.destroy(err);
  }
}
