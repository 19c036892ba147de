/**
 * What the WAL archive of the recovery source can replay (wal/replay-window.ts), and the archive
 * inventory and timeline paths it is computed over (wal/inventory.ts).
 */
export { computeWindow, type ReplayWindow } from '../wal/replay-window.js';
export { historyPath, latestTimeline, listArchive, timelinePath, type ArchiveInventory } from '../wal/inventory.js';
