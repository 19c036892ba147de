/**
 * barman-cloud's object-store layout (../shared/reference/cnpg-barman-cloud.md section 3.2).
 * Keys are relative to the store root (the path part of destinationPath).
 *
 *   <server>/base/<backup_id>/backup.info, data.tar[.ext], <oid>.tar[.ext], data_0001.tar[.ext]
 *   <server>/wals/<TLI+LOG>/<segment>[.ext]    (.backup and .partial files beside segments)
 *   <server>/wals/<TLI>.history[.ext]
 */
import { classifyWalName } from '../pg/wal-names.js';

/** backup_id as barman generates it: local time YYYYMMDDTHHMMSS. */
export const BACKUP_ID_RE = /^(\d{8})T\d{6}$/;

export function serverPrefix(serverName: string): string {
  return `${serverName}/`;
}

export function basePrefix(serverName: string): string {
  return `${serverName}/base/`;
}

export function backupPrefix(serverName: string, backupId: string): string {
  return `${serverName}/base/${backupId}/`;
}

export function backupInfoKey(serverName: string, backupId: string): string {
  return `${backupPrefix(serverName, backupId)}backup.info`;
}

export function walsPrefix(serverName: string): string {
  return `${serverName}/wals/`;
}

/** The "hash dir" of a WAL file name: TLI+LOG upper-case for segments, none for .history files. */
export function walHashDir(walName: string): string {
  if (classifyWalName(walName) === 'history') return '';
  return walName.slice(0, 16).toUpperCase();
}

/** The timeline of a hash dir's name (TLI+LOG, 16 hex digits), or undefined when it is not one. */
export function hashDirTimeline(dir: string): number | undefined {
  return /^[\dA-Fa-f]{16}$/.test(dir) ? parseInt(dir.slice(0, 8), 16) : undefined;
}

/** Key of a WAL file (without compression suffix unless `extension` is given). */
export function walKey(serverName: string, walName: string, extension = ''): string {
  const dir = walHashDir(walName);
  return `${walsPrefix(serverName)}${dir ? dir + '/' : ''}${walName}${extension}`;
}
