/**
 * The replication protocol's BASE_BACKUP command, run on a node-postgres client opened with
 * `replication: 'database'`. node-postgres handles startup, TLS and every authentication method
 * but has no notion of BASE_BACKUP's multi-result, multi-COPY response, so this is a
 * "submittable" (node-postgres' extension point for custom protocol flows, as used by
 * pg-copy-streams) that reads it by hand:
 *
 *   start position (result set) -> tablespace list (result set) -> archives -> end position (result set)
 *
 * Archives come in two shapes:
 * - PostgreSQL 15+: one CopyOutResponse; each CopyData starts with a type byte:
 *   'n' new archive (name, tablespace path), 'd' archive data, 'p' progress, 'm' manifest follows.
 * - PostgreSQL 14: one CopyOutResponse per tablespace, in the order of the tablespace list
 *   (PGDATA last), then one more for the manifest when it was requested.
 *
 * Archive bytes are handed to a PassThrough per archive; when its consumer falls behind, the
 * socket is paused, so memory stays bounded by the stream buffers whatever the database size.
 */
import { PassThrough } from 'node:stream';
import type pg from 'pg';

export interface ServerArchive {
  /** "data" for the main data directory, the tablespace oid otherwise. */
  name: string;
  /** The raw tar stream the server sends. */
  tar: PassThrough;
}

export interface BaseBackupPositions {
  start: { lsn: string; timeline: number };
  end: { lsn: string; timeline: number };
}

interface ResultSet {
  fields: string[];
  rows: (string | null)[][];
}

/** Minimal view of node-postgres' internal connection: the socket (for flow control) and events. */
interface PgConnection {
  stream: { pause(): void; resume(): void };
  query(text: string): void;
  on(event: string, fn: (msg: unknown) => void): void;
  removeListener(event: string, fn: (msg: unknown) => void): void;
}

const ARCHIVE_HIGH_WATER = 4 * 1024 * 1024;

function quote(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** The BASE_BACKUP command text for a server major version. WAL waiting is pgark's job (it polls the store). */
export function baseBackupCommand(major: number, label: string, fast: boolean): string {
  if (major >= 15) {
    return `BASE_BACKUP (LABEL ${quote(label)}, CHECKPOINT ${quote(fast ? 'fast' : 'spread')}, WAIT false, MANIFEST 'no', TABLESPACE_MAP false)`;
  }
  return `BASE_BACKUP LABEL ${quote(label)}${fast ? ' FAST' : ''} NOWAIT`;
}

export class BaseBackupStream {
  readonly text: string;
  callback?: (err: Error | null) => void;
  private readonly sets: ResultSet[] = [];
  private current?: ResultSet;
  private connection?: PgConnection;
  private archive?: PassThrough;
  private copyResponses = 0;
  private discarding = false;
  private paused = false;
  private readonly queue: (ServerArchive | null)[] = [];
  private waiter?: () => void;
  private failure?: Error;
  private finished = false;
  private readonly done: Promise<BaseBackupPositions>;
  private resolveDone!: (p: BaseBackupPositions) => void;
  private rejectDone!: (e: Error) => void;
  private startWaiters: { resolve: (s: BaseBackupPositions['start']) => void; reject: (e: Error) => void }[] = [];
  private readonly onCopyOut = () => this.copyOutResponse();
  private readonly onCopyDone = () => this.endArchive();

  constructor(
    private readonly major: number,
    label: string,
    fast: boolean,
  ) {
    this.text = baseBackupCommand(major, label, fast);
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => undefined);
  }

  /** Sends the command on a replication client. */
  run(client: pg.Client): void {
    client.query(this as unknown as pg.QueryConfig);
  }

  /** Resolves with the start position once the checkpoint is done and the copy begins. */
  started(): Promise<BaseBackupPositions['start']> {
    if (this.failure) return Promise.reject(this.failure);
    const set = this.sets[0];
    if (set) return Promise.resolve(this.position(set));
    return new Promise((resolve, reject) => this.startWaiters.push({ resolve, reject }));
  }

  /** Archives in the order the server sends them; each must be read to its end before the next arrives. */
  async *archives(): AsyncIterable<ServerArchive> {
    for (;;) {
      if (this.queue.length === 0) {
        if (this.failure) throw this.failure;
        await new Promise<void>((resolve) => (this.waiter = resolve));
        continue;
      }
      const next = this.queue.shift()!;
      if (next === null) return;
      yield next;
    }
  }

  /** Resolves when the server has confirmed the end of the backup. */
  finish(): Promise<BaseBackupPositions> {
    return this.done;
  }

  // ---- node-postgres submittable interface ----

  submit(connection: PgConnection): void {
    this.connection = connection;
    connection.on('copyOutResponse', this.onCopyOut);
    connection.on('copyDone', this.onCopyDone);
    connection.query(this.text);
  }

  handleRowDescription(msg: { fields: { name: string }[] }): void {
    this.current = { fields: msg.fields.map((f) => f.name), rows: [] };
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    this.current?.rows.push(msg.fields.map((f) => (f === null ? null : String(f))));
  }

  handleCommandComplete(): void {
    if (!this.current) return;
    this.sets.push(this.current);
    this.current = undefined;
    if (this.sets.length === 1) for (const w of this.startWaiters.splice(0)) w.resolve(this.position(this.sets[0]));
  }

  handleCopyData(msg: { chunk: Buffer }): void {
    // pg-protocol hands out views into its read buffer and reuses that buffer for later socket
    // data; archive bytes wait in a stream buffer, so they must be copied out.
    const chunk = Buffer.from(msg.chunk);
    if (this.major < 15) {
      if (!this.discarding) this.write(chunk);
      return;
    }
    switch (String.fromCharCode(chunk[0])) {
      case 'n': {
        this.endArchive();
        const nul = chunk.indexOf(0, 1);
        const name = chunk.subarray(1, nul).toString('utf8');
        this.beginArchive(name === 'base.tar' ? 'data' : name.replace(/\.tar$/, ''));
        break;
      }
      case 'd':
        if (!this.discarding) this.write(chunk.subarray(1));
        break;
      case 'm':
        this.endArchive();
        this.discarding = true;
        break;
      default:
        // 'p' progress: pgark computes its own.
        break;
    }
  }

  handleCopyInResponse(): void {
    this.fail(new Error('unexpected CopyInResponse during BASE_BACKUP'));
  }

  handleEmptyQuery(): void {}

  handlePortalSuspended(): void {}

  handleError(err: Error): void {
    this.fail(err);
  }

  handleReadyForQuery(): void {
    this.detach();
    if (this.failure) {
      this.callback?.(this.failure);
      return;
    }
    this.endArchive();
    this.finished = true;
    const end = this.sets[this.sets.length - 1];
    if (this.sets.length < 3 || !end) {
      this.fail(new Error(`BASE_BACKUP ended after ${this.sets.length} result sets, expected 3`));
      return;
    }
    this.push(null);
    this.resolveDone({ start: this.position(this.sets[0]), end: this.position(end) });
    this.callback?.(null);
  }

  // ---- internals ----

  private position(set: ResultSet): { lsn: string; timeline: number } {
    const row = set.rows[0];
    return { lsn: String(row?.[0]), timeline: Number(row?.[1]) };
  }

  private copyOutResponse(): void {
    if (this.major >= 15) return;
    // PostgreSQL 14: the i-th CopyOut is the i-th row of the tablespace list (PGDATA has a null oid).
    const list = this.sets[1]?.rows ?? [];
    const row = list[this.copyResponses++];
    if (!row) {
      this.discarding = true;
      return;
    }
    this.beginArchive(row[0] === null ? 'data' : String(row[0]));
  }

  private beginArchive(name: string): void {
    this.discarding = false;
    this.archive = new PassThrough({ highWaterMark: ARCHIVE_HIGH_WATER });
    // The consumer learns of failures from archives()/finish(); an unread archive must not crash the process.
    this.archive.on('error', () => undefined);
    this.push({ name, tar: this.archive });
  }

  private endArchive(): void {
    this.archive?.end();
    this.archive = undefined;
  }

  private write(data: Buffer): void {
    const archive = this.archive;
    if (!archive) return;
    // Messages already parsed from the current socket chunk still arrive after pause(): one resume suffices.
    if (!archive.write(data) && this.connection && !this.paused) {
      const socket = this.connection.stream;
      this.paused = true;
      socket.pause();
      archive.once('drain', () => {
        this.paused = false;
        socket.resume();
      });
    }
  }

  private push(item: ServerArchive | null): void {
    this.queue.push(item);
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private fail(err: Error): void {
    if (this.failure || this.finished) return;
    this.failure = err;
    this.archive?.destroy(err);
    this.archive = undefined;
    for (const w of this.startWaiters.splice(0)) w.reject(err);
    this.rejectDone(err);
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
    if (!this.connection) return;
    // A broken connection never reaches ReadyForQuery: report through the callback now.
    this.detach();
    this.connection.stream.resume();
  }

  private detach(): void {
    this.connection?.removeListener('copyOutResponse', this.onCopyOut);
    this.connection?.removeListener('copyDone', this.onCopyDone);
  }
}
