/**
 * Reads global/pg_control directly, without pg_controldata (which the embedded PostgreSQL builds
 * lack and which may be a different major than the data directory).
 *
 * Layout of ControlFileData (include/catalog/pg_control.h) for PostgreSQL 14-17 on a 64-bit
 * little-endian machine. The struct is identical across these majors except that 17 stores
 * wal_level inside the checkpoint copy, in what was padding (offset 60); pg_control_version is
 * 1300 for 14-16 and 1700 for 17. Offsets were checked against pg_control_system(),
 * pg_control_checkpoint(), pg_control_init() and pg_controldata on real servers (test/pg).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { PgarkError, UserError } from '../util/errors.js';
import type { Lsn } from './lsn.js';

const OFF = {
  systemIdentifier: 0,
  pgControlVersion: 8,
  catalogVersion: 12,
  state: 16,
  time: 24,
  checkpoint: 32,
  checkpointCopy: 40,
  minRecoveryPoint: 136,
  minRecoveryPointTimeline: 144,
  backupStartPoint: 152,
  backupEndPoint: 160,
  backupEndRequired: 168,
  walLevel: 172,
  walLogHints: 176,
  maxConnections: 180,
  maxAlign: 204,
  blockSize: 216,
  relationSegmentSize: 220,
  walBlockSize: 224,
  walSegmentSize: 228,
  dataChecksumVersion: 252,
  crc: 288,
} as const;

/** Offsets inside CheckPoint (the copy of the latest checkpoint record). */
const CKP = {
  redo: 0,
  timeline: 8,
  prevTimeline: 12,
  fullPageWrites: 16,
  nextXid: 24,
  nextOid: 32,
  time: 64,
} as const;

/** pg_control_version per supported layout. */
const SUPPORTED_CONTROL_VERSIONS = new Map<number, string>([
  [1300, 'PostgreSQL 13-16'],
  [1700, 'PostgreSQL 17'],
]);

const STATE_NAMES = ['starting up', 'shut down', 'shut down in recovery', 'shutting down', 'in crash recovery', 'in archive recovery', 'in production'];
const WAL_LEVELS = ['minimal', 'replica', 'logical'];

export interface ControlFileInfo {
  /** Decimal string: it does not fit in a JS number. */
  systemIdentifier: string;
  pgControlVersion: number;
  catalogVersion: number;
  /** Cluster state as pg_controldata words it ("in production", "shut down", ...). */
  state: string;
  lastModified: Date;
  checkpointLsn: Lsn;
  redoLsn: Lsn;
  timeline: number;
  prevTimeline: number;
  fullPageWrites: boolean;
  nextXid: bigint;
  nextOid: number;
  checkpointTime: Date;
  minRecoveryPoint: Lsn;
  minRecoveryPointTimeline: number;
  backupStartPoint: Lsn;
  backupEndPoint: Lsn;
  backupEndRequired: boolean;
  walLevel: string;
  walLogHints: boolean;
  maxConnections: number;
  maxAlign: number;
  blockSize: number;
  relationSegmentSize: number;
  walBlockSize: number;
  walSegmentSize: number;
  /** 0 = data checksums off, 1 = on. */
  dataChecksumVersion: number;
  /** From PG_VERSION next to global/ (undefined when parsing a bare buffer). */
  majorVersion?: number;
}

function date(seconds: bigint): Date {
  return new Date(Number(seconds) * 1000);
}

/** Parses the bytes of a pg_control file; `source` names it in errors. */
export function parseControlFile(buf: Buffer, source = 'pg_control'): ControlFileInfo {
  if (buf.length < OFF.crc + 4) throw new PgarkError(`${source} is ${buf.length} bytes, too short to be a pg_control file`);
  const version = buf.readUInt32LE(OFF.pgControlVersion);
  if (!SUPPORTED_CONTROL_VERSIONS.has(version)) {
    throw new UserError(
      `${source} has pg_control_version ${version}, a layout pgark cannot read`,
      `supported: ${[...SUPPORTED_CONTROL_VERSIONS].map(([v, what]) => `${v} (${what})`).join(', ')}`,
    );
  }
  const expectedCrc = buf.readUInt32LE(OFF.crc);
  const actualCrc = crc32c(buf.subarray(0, OFF.crc));
  if (expectedCrc !== actualCrc) {
    throw new PgarkError(`${source} has an incorrect CRC (stored ${expectedCrc.toString(16)}, computed ${actualCrc.toString(16)}): the file is corrupt`);
  }
  const ckp = (off: number) => OFF.checkpointCopy + off;
  const state = buf.readInt32LE(OFF.state);
  const walLevel = buf.readInt32LE(OFF.walLevel);
  return {
    systemIdentifier: buf.readBigUInt64LE(OFF.systemIdentifier).toString(),
    pgControlVersion: version,
    catalogVersion: buf.readUInt32LE(OFF.catalogVersion),
    state: STATE_NAMES[state] ?? `unrecognized status code ${state}`,
    lastModified: date(buf.readBigInt64LE(OFF.time)),
    checkpointLsn: buf.readBigUInt64LE(OFF.checkpoint),
    redoLsn: buf.readBigUInt64LE(ckp(CKP.redo)),
    timeline: buf.readUInt32LE(ckp(CKP.timeline)),
    prevTimeline: buf.readUInt32LE(ckp(CKP.prevTimeline)),
    fullPageWrites: buf[ckp(CKP.fullPageWrites)] !== 0,
    nextXid: buf.readBigUInt64LE(ckp(CKP.nextXid)),
    nextOid: buf.readUInt32LE(ckp(CKP.nextOid)),
    checkpointTime: date(buf.readBigInt64LE(ckp(CKP.time))),
    minRecoveryPoint: buf.readBigUInt64LE(OFF.minRecoveryPoint),
    minRecoveryPointTimeline: buf.readUInt32LE(OFF.minRecoveryPointTimeline),
    backupStartPoint: buf.readBigUInt64LE(OFF.backupStartPoint),
    backupEndPoint: buf.readBigUInt64LE(OFF.backupEndPoint),
    backupEndRequired: buf[OFF.backupEndRequired] !== 0,
    walLevel: WAL_LEVELS[walLevel] ?? `unknown (${walLevel})`,
    walLogHints: buf[OFF.walLogHints] !== 0,
    maxConnections: buf.readInt32LE(OFF.maxConnections),
    maxAlign: buf.readUInt32LE(OFF.maxAlign),
    blockSize: buf.readUInt32LE(OFF.blockSize),
    relationSegmentSize: buf.readUInt32LE(OFF.relationSegmentSize),
    walBlockSize: buf.readUInt32LE(OFF.walBlockSize),
    walSegmentSize: buf.readUInt32LE(OFF.walSegmentSize),
    dataChecksumVersion: buf.readUInt32LE(OFF.dataChecksumVersion),
  };
}

/** Reads <pgdata>/global/pg_control and <pgdata>/PG_VERSION. */
export async function readControlFile(pgdata: string): Promise<ControlFileInfo> {
  const path = join(pgdata, 'global', 'pg_control');
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new UserError(`cannot read ${path}: ${(err as Error).message}`, 'is --pgdata a PostgreSQL data directory, readable by this user?');
  }
  const info = parseControlFile(buf, path);
  const versionFile = join(pgdata, 'PG_VERSION');
  try {
    const major = Number((await readFile(versionFile, 'utf8')).trim());
    if (Number.isInteger(major)) info.majorVersion = major;
  } catch {
    // PG_VERSION missing: leave majorVersion unknown; pg_control alone is still valid.
  }
  return info;
}
