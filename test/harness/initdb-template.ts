/**
 * initdb once per PostgreSQL build and initdb arguments, and a copy of that template for every
 * cluster a test starts: 8 clusters took 13.6 CPU seconds with initdb each and 5.0 with one
 * initdb and copies (README.md, Test suite), and most of the suite's clusters are PostgreSQL 15
 * with the same arguments.
 *
 * Each copy gets a system identifier of its own, as initdb would give it: tests tell clusters
 * apart by it (an archive refuses another system's WAL, --delta refuses another system's data
 * directory). The identifier sits in pg_control (under its CRC) and in the long header of each WAL
 * segment initdb leaves (one, or several with small segment sizes); PostgreSQL refuses to start
 * when pg_control and the WAL disagree.
 *
 * Templates live in the directory PGARK_TEST_INITDB_TEMPLATES names; scripts/run-tests.mjs
 * creates one per run and removes it afterwards. Without it (benchmarks, a test file run by
 * hand) every cluster runs initdb.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import type { PgBinaries } from '../../src/pg/binaries.js';
import { parseControlFile } from '../../src/pg/control-file.js';
import { initdb, runPgTool, type RunAs } from '../../src/pg/local-server.js';
import { LONG_HEADER_SIZE, readSegmentHeader } from '../../src/wal/segment.js';

/** offsetof(ControlFileData, crc) for PostgreSQL 14-17; parseControlFile checks the result. */
const CONTROL_CRC_OFFSET = 288;
/** offsetof(XLogLongPageHeaderData, xlp_sysid). */
const WAL_SYSID_OFFSET = 24;

/** A new PostgreSQL data directory at pgdata, as `initdb` with these arguments would leave it. */
export async function createCluster(bin: PgBinaries, pgdata: string, who: RunAs | undefined, initdbArgs: string[]): Promise<void> {
  const templates = process.env.PGARK_TEST_INITDB_TEMPLATES;
  if (!templates) return initdb(bin, pgdata, who, initdbArgs);
  const template = await templateFor(templates, bin, who, initdbArgs);
  const copied = await runPgTool('cp', ['-a', template, pgdata], { who });
  if (copied.code !== 0) throw new Error(`copying the initdb template ${template} failed: ${copied.stderr}`);
  giveOwnSystemIdentifier(pgdata);
}

/**
 * The template's data directory, made on first use. Test files run in parallel processes, so each
 * builds in a directory of its own and renames it into place; a process that loses the race
 * uses the winner's.
 */
async function templateFor(templates: string, bin: PgBinaries, who: RunAs | undefined, initdbArgs: string[]): Promise<string> {
  const key = createHash('sha256').update(JSON.stringify([bin.path('initdb'), bin.version, who?.uid, initdbArgs])).digest('hex').slice(0, 16);
  const template = join(templates, key);
  if (!existsSync(template)) {
    const building = mkdtempSync(join(templates, `${key}-building-`));
    chmodSync(building, 0o777);
    const data = join(building, 'data');
    try {
      await initdb(bin, data, who, initdbArgs);
      renameSync(data, template);
    } catch (err) {
      if (!existsSync(template)) throw err;
    } finally {
      rmSync(building, { recursive: true, force: true });
    }
  }
  return template;
}

/** Writes a fresh system identifier, made as initdb makes one (seconds in the high half), into pg_control and the WAL. */
function giveOwnSystemIdentifier(pgdata: string): void {
  const systemIdentifier = (BigInt(Math.floor(Date.now() / 1000)) << 32n) | BigInt(randomBytes(4).readUInt32LE(0));
  const controlPath = join(pgdata, 'global', 'pg_control');
  const control = readFileSync(controlPath);
  control.writeBigUInt64LE(systemIdentifier, 0);
  control.writeUInt32LE(crc32c(control.subarray(0, CONTROL_CRC_OFFSET)), CONTROL_CRC_OFFSET);
  if (parseControlFile(control, controlPath).systemIdentifier !== systemIdentifier.toString()) {
    throw new Error(`${controlPath}: the system identifier was not written where pgark reads it`);
  }
  const walDir = join(pgdata, 'pg_wal');
  for (const name of readdirSync(walDir).filter((n) => /^[0-9A-F]{24}$/.test(n))) {
    const segment = openSync(join(walDir, name), 'r+');
    try {
      const head = Buffer.alloc(LONG_HEADER_SIZE);
      readSync(segment, head, 0, LONG_HEADER_SIZE, 0);
      if (!readSegmentHeader(head)) throw new Error(`${join(walDir, name)} does not start with a long page header`);
      head.writeBigUInt64LE(systemIdentifier, WAL_SYSID_OFFSET);
      writeSync(segment, head, WAL_SYSID_OFFSET, 8, WAL_SYSID_OFFSET);
    } finally {
      closeSync(segment);
    }
  }
  writeFileSync(controlPath, control);
}
