/**
 * A file:// store holds the whole database, so whatever the umask of whoever runs pgark, every
 * object it writes is 0600 and every folder 0700: a WAL pushed by hand and a base backup taken
 * by root with umask 022 and 000, next to archive_command run by PostgreSQL as its own user.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serverIdentity } from '../../src/pg/local-server.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { createTestData, PGARK, run, startArchivingServer, type ArchivingServer } from './helpers.js';

/** Every entry below dir with a mode other than 0600 (files) or 0700 (folders). */
function notPrivate(dir: string): string[] {
  const wrong: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    const mode = statSync(path).mode & 0o777;
    if (e.isDirectory()) {
      if (mode !== 0o700) wrong.push(`${path} ${mode.toString(8)}`);
      wrong.push(...notPrivate(path));
    } else if (mode !== 0o600) wrong.push(`${path} ${mode.toString(8)}`);
  }
  return wrong;
}

for (const umask of ['022', '000']) {
  describe(`a file:// store written with umask ${umask}`, () => {
    let store: TestStore;
    let server: ArchivingServer;
    let root: string;
    const scratch = scratchDir('history');

    before(async () => {
      store = await startStore('file');
      root = store.destinationPath.slice('file://'.length);
      // The store belongs to the server's OS user, so that root and archive_command can share it.
      mkdirSync(root);
      const who = serverIdentity();
      if (who) chownSync(root, who.uid, who.gid);
      server = await startArchivingServer(store);
      await createTestData(server.pg, 1000);
    });
    after(async () => {
      await server?.pg.destroy();
      await store?.stop();
      scratch.cleanup();
    });

    const asRoot = (args: string[]) => run('/bin/sh', ['-c', `umask ${umask}; exec "$@"`, 'sh', process.execPath, PGARK, ...args], { PGARK_LOG_LEVEL: 'warn', ...server.pg.env });

    it('a WAL push and a base backup leave only 0600 objects in 0700 folders', async () => {
      const history = join(scratch.path, '00000002.history');
      writeFileSync(history, '1\t0/3000000\tno recovery target specified\n');
      const push = await asRoot(['wal-archive', '--no-daemon', '-f', server.manifest, history]);
      assert.equal(push.code, 0, push.stderr);
      const backup = await asRoot(['backup', '-f', server.manifest, '--pgdata', server.pg.pgdata, '--immediate-checkpoint', '--no-progress']);
      assert.equal(backup.code, 0, backup.stderr);
      const base = join(root, server.clusterName, 'base');
      assert.equal(readdirSync(base).length, 1, 'the backup is there');
      assert.ok(statSync(join(root, server.clusterName, 'wals', '00000002.history')).isFile(), 'the pushed WAL is there');
      assert.deepEqual(notPrivate(root), []);
    });
  });
}
