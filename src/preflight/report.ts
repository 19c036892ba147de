/** One row per preflight step, shared by the checks that produce rows and the command that prints them. */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip' | 'info';

export interface CheckRow {
  check: string;
  status: CheckStatus;
  detail: string;
  hint?: string;
}

export interface CheckReport {
  ok: boolean;
  cluster?: string;
  rows: CheckRow[];
}
