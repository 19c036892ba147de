/**
 * serverIdentity: who PostgreSQL runs as when pgark runs as root. Local users come from /etc/passwd
 * without starting a process; the answer must be what `id` says, for the server's user and others.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { serverIdentity } from '../../src/pg/local-server.js';
import { UserError } from '../../src/util/errors.js';

const id = (flag: string, user: string) => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());

const root = process.getuid?.() === 0;

test('the server user and other local users resolve to the uid and primary gid `id` reports (as root; otherwise the server runs as us)', () => {
  for (const user of ['postgres', 'nobody', 'root']) {
    assert.deepEqual(serverIdentity(user), root ? { uid: id('-u', user), gid: id('-g', user), user } : undefined, user);
  }
});

test('a user nobody knows is an error as root that names the user and the setting, not uid 0 or NaN', () => {
  if (root) assert.throws(() => serverIdentity('pgark-no-such-user'), (e: Error & { hint?: string }) => e instanceof UserError && /"pgark-no-such-user".*does not exist/.test(e.message) && /PGARK_PG_OS_USER/.test(e.hint ?? ''));
  else assert.equal(serverIdentity('pgark-no-such-user'), undefined);
});
