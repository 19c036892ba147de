/**
 * PostgreSQL client tools as stream ends. The wrappers exist because a child's pipes alone lie about
 * success: pg_dump's stdout ends cleanly even when pg_dump failed, and closing psql's stdin after an
 * error would make psql commit what it has read. So a producer's stream ends only after a zero exit,
 * and a consumer is killed before its stdin closes whenever the pipeline failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { PgarkError } from '../util/errors.js';

const STDERR_KEEP = 8192;

export class ToolError extends PgarkError {}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A started tool with its stderr tail kept for error messages. */
export class Tool {
  readonly child: ChildProcess;
  private stderrTail = '';
  readonly exited: Promise<Exit>;

  constructor(
    readonly label: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    stdio: { stdin: boolean; stdout: boolean },
  ) {
    this.child = spawn(command, args, { env, stdio: [stdio.stdin ? 'pipe' : 'ignore', stdio.stdout ? 'pipe' : 'ignore', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString('utf8')).slice(-STDERR_KEEP);
    });
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.stderrTail += `${err.message}\n`;
        resolve({ code: null, signal: null });
      });
      this.child.on('close', (code, signal) => resolve({ code, signal }));
    });
  }

  get stderr(): string {
    return this.stderrTail.trim();
  }

  /** Resolves on exit status 0, otherwise rejects with the tool's stderr. */
  async success(): Promise<void> {
    const exit = await this.exited;
    if (exit.code !== 0) throw this.failure(exit);
  }

  failure(exit: Exit): ToolError {
    const how = exit.signal ? `was killed by ${exit.signal}` : exit.code === null ? 'could not be started' : `exited with status ${exit.code}`;
    return new ToolError(`${this.label} ${how}${this.stderr ? `:\n${indent(this.stderr)}` : ''}`);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

/** Pass-through after a producer's stdout that ends the stream only when the producer exited with 0. */
export class ExitGate extends Transform {
  constructor(private readonly tool: Tool) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.tool.success().then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (err) this.tool.kill();
    cb(err);
  }
}

/** The stdin of a consumer: finishes after a zero exit; on failure upstream, kills the consumer first. */
export class ToolSink extends Writable {
  constructor(private readonly tool: Tool) {
    super();
    // EPIPE when the consumer quit early: its exit status says why, reported by _write/_final.
    tool.child.stdin!.on('error', () => undefined);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    const stdin = this.tool.child.stdin!;
    if (this.tool.child.exitCode !== null || this.tool.child.signalCode !== null || stdin.destroyed) {
      this.tool.success().then(() => cb(new ToolError(`${this.tool.label} stopped reading its input`)), cb);
      return;
    }
    if (stdin.write(chunk)) {
      cb();
      return;
    }
    const onDrain = (): void => {
      this.tool.child.off('close', onClose);
      cb();
    };
    const onClose = (): void => {
      stdin.off('drain', onDrain);
      this.tool.success().then(() => cb(new ToolError(`${this.tool.label} stopped reading its input`)), cb);
    };
    stdin.once('drain', onDrain);
    this.tool.child.once('close', onClose);
  }

  override _final(cb: (error?: Error | null) => void): void {
    this.tool.child.stdin!.end();
    this.tool.success().then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (err) {
      this.tool.kill();
      this.tool.child.stdin!.destroy();
    }
    cb(err);
  }
}
