/**
 * The agent serves the timeline page at /timeline: a real `pgark agent` over the representative
 * archive in a file:// store (no PostgreSQL needed for a store-only Cluster), read over HTTP.
 */
process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { freePort } from '../harness/ports.js';
import { getText, startAgent, waitFor } from '../agent/helpers.js';
import { representativeArchive } from './archive.js';

test('pgark agent: /timeline is the HTML timeline of the Cluster, ?cluster= an unknown one is 404', async () => {
  const a = await representativeArchive();
  const agent = startAgent(['-f', a.manifest, '--state-dir', join(a.dir, 'state')], { port: await freePort() });
  try {
    await waitFor('the agent to answer', async () => ((await getText(agent.url, '/healthz')).status === 200 ? true : undefined), 60_000, agent);
    const page = await getText(agent.url, '/timeline');
    assert.equal(page.status, 200, page.body);
    assert.match(page.body, /^<!doctype html>/);
    assert.match(page.body, /Recoverability of server &quot;pg&quot;/);
    assert.equal(page.body.match(/data-kind="backup"/g)?.length, 60);
    assert.equal(page.body.match(/data-kind="gap"/g)?.length, 2);
    assert.equal(page.body.match(/data-kind="retention"/g)?.length, 1, 'the Cluster retentionPolicy is shaded');
    assert.equal((await getText(agent.url, '/timeline?cluster=pg')).status, 200);
    const unknown = await getText(agent.url, '/timeline?cluster=nope');
    assert.equal(unknown.status, 404);
    assert.match(unknown.body, /timeline failed: no Cluster "nope" \(known: pg\)/);
  } finally {
    agent.proc.kill('SIGTERM');
    await agent.exited;
    await a.cleanup();
  }
});
