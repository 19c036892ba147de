/**
 * An external program as one stream: its stdin is the writable side, its stdout the readable side.
 * Used for the codecs without a native binding (bzip2, xz, lz4 decoding) and for PostgreSQL's
 * client tools (pg_dump, pg_dumpall, psql, pg_restore).
 *
 * A child's pipes alone lie about success: a decoder's or pg_dump's stdout ends cleanly even when
 * the program failed, and closing psql's stdin after an error upstream would make psql commit what
 * it has read. So the stream ends (readable end, writable finish) only after the program exited
 * with 0; a non-zero exit, a signal, a program that could not start or stopped reading its input
 * early, and (for programs that print nothing when they succeed) any stderr output become an
 * error naming the program, with the tail of its stderr. Destroying the stream before the program
 * exited kills it (SIGKILL) before its stdin closes.
 *
 * Memory stays bounded: stdout is paused while the readable side is full, and a write waits for
 * stdin's 'drain'.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Transform, type TransformCallback, type TransformOptions } from 'node:stream';
import { PgarkError } from '../util/errors.js';

/** Only the tail of stderr is kept: enough for an error message, bounded for a chatty program. */
const STDERR_KEEP = 8192;

export class ChildProcessError extends PgarkError {}

export interface ChildStreamOptions {
  /** Names the program in errors; default: the command. */
  label?: string;
  env?: NodeJS.ProcessEnv;
  /** Whether the program reads stdin (writable side) and writes stdout (readable side); both by default. */
  stdin?: boolean;
  stdout?: boolean;
  /**
   * For programs silent on success (the codec tools): stderr output fails the stream even after
   * exit 0. Not for PostgreSQL's tools, which print notices and warnings there.
   */
  stderrIsFailure?: boolean;
  /** Turns the failure text ("xz exited with status 1: ...") into the caller's error type. */
  error?: (detail: string) => Error;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  startError?: Error;
}

/** A Transform (what the codec streams are), though either side may be closed: a producer has no stdin, a consumer no stdout. */
export class ChildStream extends Transform {
  readonly child: ChildProcess;
  private readonly label: string;
  private stderrTail = '';
  private exit: Exit | undefined;
  private readonly exitWaiters: (() => void)[] = [];
  private stdinFailed = false;
  private pendingWrite: ((err?: Error) => void) | undefined;
  private finalCallback: ((err?: Error) => void) | undefined;

  constructor(
    command: string,
    args: string[],
    private readonly opts: ChildStreamOptions = {},
  ) {
    const stdin = opts.stdin ?? true;
    const stdout = opts.stdout ?? true;
    // Node has the readable/writable options since 15; @types/node 20 does not declare them.
    super({ readable: stdout, writable: stdin } as TransformOptions);
    this.label = opts.label ?? command;
    this.child = spawn(command, args, { env: opts.env ?? process.env, stdio: [stdin ? 'pipe' : 'ignore', stdout ? 'pipe' : 'ignore', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => {
      if (!this.push(d)) this.child.stdout!.pause();
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString('utf8')).slice(-STDERR_KEEP);
    });
    this.child.stdin?.on('error', () => {
      // EPIPE: the program quit before reading everything; its exit status (or this flag) says why.
      this.stdinFailed = true;
      this.releasePendingWrite();
    });
    this.child.stdin?.on('drain', () => this.releasePendingWrite());
    this.child.on('error', (err) => this.onExit({ code: null, signal: null, startError: err }));
    this.child.on('close', (code, signal) => this.onExit({ code, signal }));
  }

  /** The program's stderr so far (its tail). */
  get stderr(): string {
    return this.stderrTail.trim();
  }

  /** Resolves once the program exited cleanly; rejects with the error the stream reports. */
  success(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.whenExited(() => {
        const err = this.failure();
        if (err) reject(err);
        else resolve();
      }),
    );
  }

  kill(): void {
    if (!this.exit && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  override _read(size: number): void {
    this.child.stdout?.resume();
    super._read(size);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.exit || this.stdinFailed) {
      // The exit status explains a closed stdin better than the write does: wait for it.
      this.whenExited(() => cb(this.failure() ?? this.stoppedReading()));
      return;
    }
    if (this.child.stdin!.write(chunk)) cb();
    else this.pendingWrite = cb;
  }

  /** Transform ends the readable side once this calls back: only after a clean exit. */
  override _flush(cb: TransformCallback): void {
    this.child.stdin!.end();
    this.finalCallback = cb;
    if (this.exit) this.settle();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.kill();
    this.child.stdin?.destroy();
    cb(err);
  }

  private whenExited(fn: () => void): void {
    if (this.exit) fn();
    else this.exitWaiters.push(fn);
  }

  private releasePendingWrite(err?: Error): void {
    const cb = this.pendingWrite;
    this.pendingWrite = undefined;
    cb?.(err);
  }

  private onExit(exit: Exit): void {
    if (this.exit) return;
    this.exit = exit;
    for (const fn of this.exitWaiters.splice(0)) fn();
    this.settle();
  }

  private settle(): void {
    const err = this.failure() ?? (this.pendingWrite ? this.stoppedReading() : undefined);
    const final = this.finalCallback;
    this.finalCallback = undefined;
    if (err) {
      this.releasePendingWrite();
      // A stream with neither side open has no 'error' listener to tell; success() reports instead.
      if (final) final(err);
      else if (this.readable || this.writable) this.destroy(err);
      return;
    }
    // Without stdin there is no flush to end the readable side.
    if (!(this.opts.stdin ?? true)) this.push(null);
    final?.();
  }

  private failure(): Error | undefined {
    const exit = this.exit;
    if (!exit) return undefined;
    if (exit.startError) return this.describe(`could not be started: ${exit.startError.message}`);
    if (exit.signal) return this.describe(`was killed by ${exit.signal}`);
    if (exit.code !== 0) return this.describe(`exited with status ${exit.code}`);
    if (this.opts.stderrIsFailure && this.stderr) return this.describe('reported an error');
    if (this.stdinFailed) return this.describe('stopped reading its input before the end (trailing data?)');
    return undefined;
  }

  private stoppedReading(): Error {
    return this.describe('stopped reading its input');
  }

  private describe(what: string): Error {
    const detail = `${this.label} ${what}${this.stderr ? `:\n${indent(this.stderr)}` : ''}`;
    return this.opts.error?.(detail) ?? new ChildProcessError(detail);
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
