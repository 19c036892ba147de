/**
 * The layers of src/, checked by `npm run lint:deps` (docs/architecture.md draws them):
 *
 *   cli -> commands -> domain (wal backup recovery catalog agent logical preflight plugin verify drill timeline)
 *       -> config -> foundations (storage codec pg schedule io) -> util
 *
 * A module may import its own folder and any layer below its own, never one above. config sits
 * under the domain: it reads manifests and Secrets and hands the foundations plain option objects
 * (storage's ObjectStoreOptions, pg's PgConnectionOptions), so no foundation imports config.
 * schedule is a foundation: after `pgark schedule next` moved to commands it is only the cron
 * parser, which config uses to validate ScheduledBackup schedules.
 * Foundations do not import each other, except io: the stream toolkit (count, hash, progress, the
 * child-process stream) is the bottom foundation, which the others and everything above may use.
 * Domain folders import each other only along DOMAIN_USES.
 */
const DOMAIN = ['wal', 'backup', 'recovery', 'catalog', 'agent', 'logical', 'preflight', 'plugin', 'verify', 'drill', 'timeline'];
const FOUNDATIONS = ['storage', 'codec', 'pg', 'schedule', 'io'];

/** The only domain -> domain imports. catalog is the bottom of the domain: it reads and writes the store's layout. */
const DOMAIN_USES = {
  catalog: [],
  logical: [],
  // The WAL code names its objects with the catalog's layout.
  wal: ['catalog'],
  // A backup commits into the catalog.
  backup: ['catalog'],
  // Recovery selects a backup from the catalog and checks / serves WAL with the WAL code.
  recovery: ['catalog', 'wal'],
  // The agent schedules backups, retention and restore drills, hosts the WAL fast path and serves /timeline.
  agent: ['backup', 'catalog', 'wal', 'drill', 'timeline'],
  // The preflight writes its probe with the catalog's write options.
  preflight: ['catalog'],
  // The CNPG-I plugin serves WAL, backups, restore jobs and retention over gRPC with the same code as the CLI.
  plugin: ['backup', 'catalog', 'wal', 'recovery', 'preflight'],
  // verify reads backups and WAL back from the store and checks them against the catalog.
  verify: ['catalog', 'wal'],
  // A restore drill restores (recovery), then checks the result.
  drill: ['recovery', 'catalog', 'wal', 'verify'],
  // The recoverability timeline draws the catalog, WAL coverage, verify and drill results.
  timeline: ['catalog', 'wal', 'verify', 'drill'],
};

const folders = (names) => `^src/(${names.join('|')})/`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Modules must not import each other in a circle, directly or through others: split out what both need.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'util-must-not-import-the-project',
      comment: 'src/util is the bottom layer: it imports only itself.',
      severity: 'error',
      from: { path: '^src/util/' },
      to: { path: '^src/', pathNot: '^src/util/' },
    },
    {
      name: 'foundation-must-not-import-config',
      comment: 'Foundations (storage, codec, pg, schedule, io) never import config: they take plain options (ObjectStoreOptions, PgConnectionOptions); the config layer builds them.',
      severity: 'error',
      from: { path: folders(FOUNDATIONS) },
      to: { path: '^src/config/' },
    },
    {
      name: 'foundation-must-not-import-up-or-sideways',
      comment:
        'A foundation imports its own folder, src/io and src/util only: not the domain, commands, cli, nor another foundation. io, the stream toolkit, sits under the other foundations, so io itself imports only util.',
      severity: 'error',
      from: { path: folders(FOUNDATIONS) },
      to: { path: '^src/', pathNot: ['^src/util/', '^src/$1/', '^src/config/', '^src/io/'] },
    },
    {
      name: 'config-must-not-import-domain-or-above',
      comment: 'config sits under the domain: it may import foundations and util only.',
      severity: 'error',
      from: { path: '^src/config/' },
      to: { path: folders([...DOMAIN, 'commands', 'cli']) },
    },
    {
      name: 'domain-must-not-import-commands-or-cli',
      comment: 'Domain modules return data; printing and option parsing live above them.',
      severity: 'error',
      from: { path: folders(DOMAIN) },
      to: { path: folders(['commands', 'cli']) },
    },
    ...Object.entries(DOMAIN_USES).map(([from, uses]) => ({
      name: `domain-${from}-may-use-only-${uses.length ? uses.join('-') : 'itself'}`,
      comment: `Allowed domain imports of src/${from}: ${uses.length ? uses.join(', ') : 'none'} (DOMAIN_USES in .dependency-cruiser.cjs).`,
      severity: 'error',
      from: { path: `^src/${from}/` },
      to: { path: folders(DOMAIN.filter((d) => d !== from && !uses.includes(d))) },
    })),
    {
      name: 'commands-must-not-import-cli',
      comment: 'src/commands is called by the cli layer, never the other way round.',
      severity: 'error',
      from: { path: '^src/commands/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'cli-calls-commands-not-the-domain',
      comment:
        'The cli layer parses options and calls src/commands. The one exception is the static table of restore variables that `pgark logical restore --help` shows.',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: folders([...DOMAIN, 'config']), pathNot: '^src/logical/restore-env\\.(ts|js)$' },
    },
  ],
  options: {
    // dependency-cruiser 17 parses TypeScript with typescript < 7 or @swc/core; the build needs
    // typescript 7, so @swc/core (a devDependency) reads the sources, type-only imports included.
    parser: 'swc',
    tsPreCompilationDeps: true,
    // NodeNext sources import './x.js' for ./x.ts; dependency-cruiser falls back to the .ts file itself.
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
  },
};
