/** What a cell of the fault matrix is, and what the runner gives it. */
import type { SharedServers } from './site.js';
import type { Tally } from './tally.js';

export interface RunContext {
  servers: SharedServers;
  quick: boolean;
  /** How long the "hang" fault sends nothing. */
  hangMs: number;
  /** Trials for a cell (kill cells get more by default). */
  trials(cell: string): number;
  log(line: string): void;
  /** One instance of an expensive fixture (a PostgreSQL and store) for every cell that asks by `key`; stopped at the end. */
  shared<T extends { stop(): Promise<void> }>(key: string, create: () => Promise<T>): Promise<T>;
}

export interface Cell {
  name: string;
  about: string;
  kind: 'kill' | 'store' | 'disk' | 'credentials' | 'input';
  /** false: --quick leaves it out unless it is named (so the quick run stays within five minutes). */
  quick?: boolean;
  run(ctx: RunContext, t: Tally): Promise<void>;
}
