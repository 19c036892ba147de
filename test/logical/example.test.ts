/** The CronJob example and the Dockerfile hold together with the code that reads them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { readBackupSettings } from '../../src/logical/backup-env.js';
import { REPO } from './helpers.js';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}

function loadExample(): any[] {
  const text = readFileSync(join(REPO, 'examples', 'backup-template', 'postgresql-logical-backup.yaml'), 'utf8');
  const docs = parseAllDocuments(text);
  for (const d of docs) assert.deepEqual(d.errors, [], 'YAML parse errors');
  return docs.map((d) => d.toJS());
}

test('example CronJob has every field a batch/v1 CronJob needs', () => {
  const cron = loadExample().find((d) => d.kind === 'CronJob');
  assert.ok(cron, 'no CronJob document');
  assert.equal(cron.apiVersion, 'batch/v1');
  assert.equal(typeof cron.metadata.name, 'string');
  assert.match(cron.spec.schedule, /^(\S+\s+){4}\S+$/, 'schedule is not a five-field cron expression');
  const pod = cron.spec.jobTemplate.spec.template.spec;
  assert.ok(['OnFailure', 'Never'].includes(pod.restartPolicy), 'a Job pod needs restartPolicy OnFailure or Never');
  const c = pod.containers[0];
  assert.equal(typeof c.name, 'string');
  assert.match(c.image, /pgark/);
  assert.deepEqual(c.command, ['pgark', 'logical', 'backup']);
  assert.ok(Array.isArray(c.env) && c.env.length > 0);
  for (const e of c.env as EnvVar[]) assert.ok(e.value !== undefined || e.valueFrom?.secretKeyRef, `${e.name} has neither value nor secretKeyRef`);
});

test('example CronJob: secrets come from Secrets, and its environment is accepted by `pgark logical backup`', () => {
  const docs = loadExample();
  const cron = docs.find((d) => d.kind === 'CronJob');
  const secrets = new Map<string, Record<string, string>>(docs.filter((d) => d.kind === 'Secret').map((d) => [d.metadata.name, d.stringData]));
  const env: NodeJS.ProcessEnv = {};
  for (const e of cron.spec.jobTemplate.spec.template.spec.containers[0].env as EnvVar[]) {
    if (/PASSWORD|SECRET|_KEY$/.test(e.name)) assert.ok(e.valueFrom?.secretKeyRef, `${e.name} must come from a Secret`);
    const ref = e.valueFrom?.secretKeyRef;
    env[e.name] = ref ? (secrets.get(ref.name)?.[ref.key] ?? `value-of-${ref.name}-${ref.key}`) : e.value;
  }
  const settings = readBackupSettings({}, env);
  assert.equal(settings.location.provider, 's3');
  assert.equal(settings.scope, 'oncall-pgsql');
  assert.equal(settings.retention?.text, '7 days');
  assert.equal(settings.database, undefined, 'the example dumps every database');
  assert.equal(settings.conn.host, 'oncall-pgsql-rw');
});

test('Dockerfile: Node 20 bookworm-slim with PostgreSQL client tools, production dependencies, pgark entrypoint', () => {
  const text = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
  assert.match(text, /^FROM node:20-bookworm-slim AS build$/m);
  assert.match(text, /^FROM node:20-bookworm-slim$/m);
  assert.match(text, /postgresql-client-\$PG_MAJOR/);
  assert.match(text, /npm prune --omit=dev/);
  assert.match(text, /^ENTRYPOINT \["\/opt\/pgark\/bin\/pgark"\]$/m);
  assert.match(text, /restore\.sh/);
});
