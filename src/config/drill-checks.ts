/**
 * A restore drill's checks file (`pgark drill --checks FILE`): one YAML list of {database, sql,
 * expect}, the shape of ScheduledDrill spec.checks, validated with the same zod schema so either
 * form reports a mistake at file:line:column with the field path.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, UserError } from '../util/errors.js';
import { drillChecksFile } from './schema.js';
import { parseText } from './source.js';
import type { DrillCheck } from './types.js';
import { schemaIssues } from './validate.js';

export function loadDrillChecks(file: string): DrillCheck[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read the checks file "${file}": ${(err as Error).message}`, 'pass --checks with a YAML file holding a list of {database, sql, expect}');
  }
  const parsed = parseText(file, text);
  if (parsed.issues.length) throw new ConfigError(parsed.issues);
  const docs = parsed.documents.filter((d) => d.value !== null && d.value !== undefined);
  if (docs.length !== 1) {
    throw new ConfigError([
      {
        position: docs[1]?.position ?? { file, line: 1, column: 1 },
        path: '',
        message: docs.length ? 'the checks file holds more than one YAML document' : 'the checks file is empty',
        expected: 'one YAML list of {database, sql, expect}',
      },
    ]);
  }
  const issues = schemaIssues(docs[0], drillChecksFile);
  if (issues.length) throw new ConfigError(issues);
  return drillChecksFile.parse(docs[0].value);
}
