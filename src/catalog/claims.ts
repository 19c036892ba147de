/**
 * Reading the claim objects that running base backups keep under base/<ID>/ (written and
 * refreshed by src/backup/claim.ts, whose header explains the protocol): which keys are claims,
 * and whether a claim still belongs to a live backup. The catalog uses this to list a running
 * backup as STARTED and to refuse deleting it.
 */
import { OPTIONS } from '../util/options.js';

export const CLAIM_PREFIX = 'pgark-claim-';
/** The period a claim without one is read with, and the longest a claim may state: PGARK_CLAIM_HEARTBEAT_SECONDS's default and range. */
const HEARTBEAT = OPTIONS.claimHeartbeatSeconds;
const DEFAULT_HEARTBEAT_SECONDS = Number(HEARTBEAT.default);
const MAX_HEARTBEAT_SECONDS = HEARTBEAT.type.max ?? Infinity;
/** Periods without a refresh after which a claim is stale. */
export const CLAIM_STALE_PERIODS = 6;

export function isClaimKey(key: string): boolean {
  return key.slice(key.lastIndexOf('/') + 1).startsWith(CLAIM_PREFIX);
}

/** What a claim object holds; heartbeatSeconds tells readers when to call it stale. */
export interface ClaimContent {
  host: string;
  pid: number;
  claimedAt: string;
  refreshedAt: string;
  heartbeatSeconds: number;
}

export interface ClaimState {
  host?: string;
  pid?: number;
  /** Newest sign of life: the store's lastModified or the writer's refreshedAt, whichever is later. */
  refreshedAt?: Date;
  heartbeatSeconds: number;
  /** When the claim stops counting as live unless refreshed again. */
  staleAt?: Date;
  live: boolean;
}

function validHeartbeat(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_HEARTBEAT_SECONDS;
}

/**
 * Whether a claim object (its text, undefined when unreadable, and its lastModified) belongs to a
 * backup still running at `now`. A claim with no timestamp at all counts as live: deleting a
 * running backup loses data, while a folder wrongly kept only costs its space until someone looks.
 */
export function claimState(text: string | undefined, lastModified: Date | undefined, now: Date): ClaimState {
  let content: Partial<ClaimContent> = {};
  try {
    const parsed: unknown = text === undefined ? undefined : JSON.parse(text);
    if (parsed && typeof parsed === 'object') content = parsed as Partial<ClaimContent>;
  } catch {
    content = {};
  }
  const heartbeatSeconds = validHeartbeat(content.heartbeatSeconds) ? content.heartbeatSeconds : DEFAULT_HEARTBEAT_SECONDS;
  const written = Date.parse(String(content.refreshedAt ?? content.claimedAt));
  const times = [lastModified?.getTime(), written].filter((t): t is number => t !== undefined && Number.isFinite(t));
  const state: ClaimState = {
    host: typeof content.host === 'string' ? content.host : undefined,
    pid: typeof content.pid === 'number' ? content.pid : undefined,
    heartbeatSeconds,
    live: true,
  };
  if (times.length === 0) return state;
  const refreshed = Math.max(...times);
  const staleAt = refreshed + CLAIM_STALE_PERIODS * heartbeatSeconds * 1000;
  return { ...state, refreshedAt: new Date(refreshed), staleAt: new Date(staleAt), live: now.getTime() <= staleAt };
}
