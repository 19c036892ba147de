/**
 * The fault matrix: runs each cell many times on real PostgreSQL and the real test stores and
 * prints, per cell, the trials and every way data could have been lost or a failure hidden.
 * The goal is zero in every column but trials.
 *
 *   npm run faults -- [--quick] [--trials N] [--kill-trials N] [--cells a,b|kill,store,...]
 *                     [--hang-seconds S] [--json FILE] [--list]
 *
 * Defaults: 30 trials per kill -9 cell, 6 per other cell, a 60 s hang; --quick runs 2 and 1 with a
 * 20 s hang and leaves out the cells marked quick: false (each store fault runs on one provider
 * only), about 5 minutes on 2 cores; a cell named in --cells always runs. --cells takes
 * cell names or kinds (kill, store, credentials, disk, input).
 * Exits 1 when any column but trials is non-zero.
 */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';
import { startS3rver } from '../../test/harness/s3rver.js';
import { startAzurite } from '../../test/harness/azurite.js';
import { option, numberOption } from '../util.js';
import { killCells } from './cells-kill.js';
import { storeCells } from './cells-store.js';
import { localCells } from './cells-local.js';
import { rotationCells } from './cells-rotation.js';
import { findings, newTally, renderTable, type Tally } from './tally.js';
import type { Cell, RunContext } from './cell.js';

const ALL: Cell[] = [...killCells, ...storeCells, ...rotationCells, ...localCells];

if (process.argv.includes('--list')) {
  for (const c of ALL) console.log(`${c.name.padEnd(28)} ${c.kind.padEnd(12)} ${c.about}`);
  process.exit(0);
}

const quick = process.argv.includes('--quick');
const selected = option('cells')?.split(',');
for (const s of selected ?? []) if (!ALL.some((c) => c.name === s || c.kind === s)) throw new Error(`--cells: no cell or kind "${s}" (see --list)`);
const cells = ALL.filter((c) => selected?.includes(c.name) || ((!selected || selected.includes(c.kind)) && !(quick && c.quick === false)));
const killTrials = numberOption('kill-trials', numberOption('trials', quick ? 2 : 30));
const otherTrials = numberOption('trials', quick ? 1 : 6);
const hangMs = numberOption('hang-seconds', quick ? 20 : 60) * 1000;

function machine(): string {
  let os = '';
  try {
    os = execFileSync('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"'], { encoding: 'utf8' }).trim();
  } catch {
    os = process.platform;
  }
  return `${os}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, PostgreSQL 15`;
}

const started = new Date();
const s3 = await startS3rver();
const azurite = await startAzurite();
const shared = new Map<string, Promise<{ stop(): Promise<void> }>>();
const ctx: RunContext = {
  servers: { s3rver: s3, azurite },
  quick,
  hangMs,
  trials: (cell) => (ALL.find((c) => c.name === cell)?.kind === 'kill' ? killTrials : otherTrials),
  log: (line) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`),
  shared<T extends { stop(): Promise<void> }>(key: string, create: () => Promise<T>): Promise<T> {
    if (!shared.has(key)) shared.set(key, create());
    return shared.get(key)! as Promise<T>;
  },
};

const tallies: Tally[] = [];
try {
  for (const cell of cells) {
    const t = newTally(cell.name);
    tallies.push(t);
    const t0 = Date.now();
    ctx.log(`${cell.name}: ${cell.about}`);
    try {
      await cell.run(ctx, t);
    } catch (e) {
      // A cell that could not run says so; it must not look like a clean one.
      t.skipped = `harness error after ${t.trials} trials: ${(e as Error).message.split('\n')[0].slice(0, 300)}`;
    }
    t.seconds = (Date.now() - t0) / 1000;
  }
} finally {
  for (const s of shared.values()) await (await s.catch(() => undefined))?.stop().catch(() => undefined);
  await s3.stop();
  await azurite.stop();
}

const minutes = ((Date.now() - started.getTime()) / 60_000).toFixed(1);
console.log(`\nFault matrix, ${started.toISOString().slice(0, 16)}Z, ${machine()}; ${minutes} min`);
console.log(`trials: ${killTrials} per kill -9 cell, ${otherTrials} per other cell; hang ${hangMs / 1000} s${quick ? ' (--quick)' : ''}\n`);
console.log(renderTable(tallies));
const notes = tallies.flatMap((t) => t.notes);
if (notes.length) console.log(`\nFindings:\n${notes.map((n) => `- ${n}`).join('\n')}`);
const json = option('json');
if (json) writeFileSync(json, JSON.stringify({ started, machine: machine(), killTrials, otherTrials, hangMs, tallies }, null, 2));
process.exit(tallies.some((t) => findings(t) > 0 || t.skipped?.startsWith('harness error')) ? 1 : 0);
