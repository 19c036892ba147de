/**
 * Every file in test/fixtures/manifests/invalid/ starts with a line
 *   # expect: line=N path=FIELD.PATH message="fragment" hint="fragment"
 * and must fail to load with an issue at that file:line, on that field path, whose message and
 * hint contain those fragments (an empty hint fragment asserts nothing about the hint).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadManifests } from '../../src/config/index.js';
import { ConfigError, formatIssue } from '../../src/util/errors.js';

const DIR = 'test/fixtures/manifests/invalid';

interface Expectation {
  line: number;
  path: string;
  message: string;
  hint: string;
}

function expectationOf(file: string): Expectation {
  const header = readFileSync(file, 'utf8').split('\n')[0];
  const fields: Record<string, string> = {};
  for (const m of header.matchAll(/(\w+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/g)) {
    fields[m[1]] = m[2] !== undefined ? m[2].replace(/\\"/g, '"') : m[3];
  }
  assert.ok(fields.line && fields.message !== undefined, `${file}: malformed "# expect:" header`);
  return { line: Number(fields.line), path: fields.path ?? '', message: fields.message, hint: fields.hint ?? '' };
}

const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();

test('there are at least 20 malformed manifests', () => {
  assert.ok(files.length >= 20, `only ${files.length}`);
});

for (const name of files) {
  test(`invalid/${name} is rejected with a positioned, hinted error`, async () => {
    const file = join(DIR, name);
    const want = expectationOf(file);
    const err = await loadManifests([file]).then(
      () => assert.fail('loaded without error'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    const all = err.issues.map(formatIssue).join('\n');
    const match = err.issues.find((i) => i.path === want.path && i.message.includes(want.message));
    assert.ok(match, `no issue on "${want.path}" containing ${JSON.stringify(want.message)}; got:\n${all}`);
    assert.equal(match.position?.file, file);
    assert.equal(match.position?.line, want.line, `line of: ${formatIssue(match)}`);
    assert.ok((match.position?.column ?? 0) >= 1);
    if (want.hint) assert.ok(match.hint?.includes(want.hint), `hint ${JSON.stringify(match.hint)} lacks ${JSON.stringify(want.hint)}`);
    // The rendered message names file:line:column and the field path.
    assert.match(err.message, new RegExp(`${file.replace(/[.]/g, '\\.')}:${want.line}:\\d+: ${want.path.replace(/[.[\]]/g, '\\$&')}`));
  });
}
