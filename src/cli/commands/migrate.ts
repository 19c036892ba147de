/** `pgark migrate`: in-tree barmanObjectStore (or plugin-barman-cloud) manifests to the pgark plugin's form. */
import type { Command } from 'commander';
import { action, configFiles } from '../common.js';
import { withOptions } from '../options.js';
import { flagValue } from '../../util/options.js';

interface MigrateFlags {
  file: string[];
  output?: string;
  from: string;
  name: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('migrate')
    .description(
      'rewrite CNPG manifests for the pgark plugin: barmanObjectStore blocks become ObjectStores and plugin references (or barman-cloud plugin references become pgark); prints the result or writes it to -o DIR',
    );
  withOptions(cmd, 'migrate').action(
    action(async (flags: MigrateFlags) => {
      const { migrateCommand } = await import('../../commands/migrate.js');
      await migrateCommand({
        files: configFiles({ file: flags.file }),
        output: flags.output,
        from: flagValue('migrateFrom', flags.from) as 'in-tree' | 'barman-cloud-plugin',
        name: flags.name,
      });
    }),
  );
}
