/**
 * A backup of a server reached only over the network: BASE_BACKUP on a replication connection (as
 * pg_basebackup does). The server's tars are unpacked entry by entry and handed on, so that pgark
 * writes barman's member naming, drops what barman does not store (the pg_tblspc links, which
 * barman-cloud-restore recreates from backup.info) and moves backup_label to the end of data.tar.
 */
import type pg from 'pg';
import tar from 'tar-stream';
import { connectPg, type PgConnectionOptions } from '../pg/connect.js';
import type { BackupSource, BackupStart, BackupStop, ServerFacts, SourceArchive, SourceEntry } from './types.js';
import { BaseBackupStream, type ServerArchive } from './base-backup-protocol.js';
import { PgarkError } from '../util/errors.js';
import { PGARK_EXCLUDES, pathFilter } from './exclusions.js';

// standby.signal: BASE_BACKUP on a standby sends it, barman's exclude list (and a local copy) drops
// it; restored, it would turn the new server into a standby of the old primary.
const DROPPED_FROM_DATA = new Set(['tablespace_map', 'backup_manifest', 'standby.signal']);
const PGARK_FILTER = pathFilter(PGARK_EXCLUDES);

export class RemoteSource implements BackupSource {
  readonly method = 'remote' as const;
  private stream?: BaseBackupStream;
  private replication?: pg.Client;
  private labelFile?: string;

  constructor(
    /** The runner's ordinary SQL session (for the server's clock). */
    private readonly sql: pg.Client,
    private readonly connection: PgConnectionOptions,
    private readonly facts: ServerFacts,
  ) {}

  async start(label: string, fast: boolean): Promise<BackupStart> {
    const client = await connectPg(this.connection, { replication: 'database', application_name: 'pgark_backup' });
    // Failures surface through the BASE_BACKUP stream; without a listener an 'error' event would crash the process.
    client.on('error', () => undefined);
    this.replication = client;
    this.stream = new BaseBackupStream(this.facts.major, label, fast);
    this.stream.run(client);
    const start = await this.stream.started();
    const now = await this.sql.query<{ now: Date }>('SELECT now() AS now');
    return { lsn: start.lsn, timeline: start.timeline, time: now.rows[0].now };
  }

  async *archives(): AsyncIterable<SourceArchive> {
    if (!this.stream) throw new PgarkError('backup not started');
    for await (const archive of this.stream.archives()) {
      yield { name: archive.name, entries: this.entries(archive) };
    }
  }

  private async *entries(archive: ServerArchive): AsyncIterable<SourceEntry> {
    const isData = archive.name === 'data';
    const extract = tar.extract();
    archive.tar.on('error', (err) => extract.destroy(err));
    archive.tar.pipe(extract);
    // The server sends no entry for the archive's root directory; barman's tars have one.
    yield { type: 'directory', path: '', mode: 0o700, mtime: new Date() };
    for await (const entry of extract) {
      const h = entry.header;
      const path = h.name.replace(/^\.\//, '').replace(/\/+$/, '');
      if (isData && path === 'backup_label') {
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        this.labelFile = Buffer.concat(chunks).toString('utf8');
        continue;
      }
      if (isData && (DROPPED_FROM_DATA.has(path) || !PGARK_FILTER.allows(path) || (h.type === 'symlink' && path.startsWith('pg_tblspc/')))) {
        entry.resume();
        continue;
      }
      const base = { path, mode: (h.mode ?? 0o600) & 0o7777, mtime: h.mtime ?? new Date(), uid: h.uid, gid: h.gid };
      if (h.type === 'directory') {
        entry.resume();
        yield { ...base, type: 'directory' };
      } else if (h.type === 'symlink') {
        entry.resume();
        yield { ...base, type: 'symlink', linkname: h.linkname ?? '' };
      } else if (h.type === 'file') {
        yield { ...base, type: 'file', size: h.size ?? 0, body: entry as unknown as AsyncIterable<Uint8Array> };
      } else {
        entry.resume();
      }
    }
  }

  async stop(): Promise<BackupStop> {
    if (!this.stream) throw new PgarkError('backup not started');
    const positions = await this.stream.finish();
    if (this.labelFile === undefined) throw new PgarkError('the server sent no backup_label in its base archive');
    const now = await this.sql.query<{ now: Date }>('SELECT now() AS now');
    return { lsn: positions.end.lsn, timeline: positions.end.timeline, time: now.rows[0].now, labelFile: this.labelFile };
  }

  async close(): Promise<void> {
    await this.replication?.end().catch(() => undefined);
  }
}
