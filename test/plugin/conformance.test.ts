/**
 * pgark's .proto files (proto/cnpgi) against the upstream CNPG-I v0.6.0 files
 * (test/fixtures/cnpg-i): every package, service, method (types, streaming), message, field
 * (number, type, label, map key, proto3 optional, oneof) and enum value must be the same, or
 * CNPG and pgark would not understand each other on the wire. A copy of pgark's files with one
 * field number changed must fail the same comparison.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { PROTO_DIR, PROTO_FILES } from '../../src/plugin/proto.js';
import { REFERENCE_PROTO_DIR } from '../harness/cnpg-client.js';
import { scratchDir } from '../harness/tmp.js';

/** Every wire-relevant fact of the types defined in `files`, as "path -> description". */
function facts(dir: string, files: readonly string[]): Map<string, string> {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(dir, target);
  root.loadSync([...files], { keepCase: true });
  root.resolveAll();
  const out = new Map<string, string>();
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      const name = obj.fullName.slice(1);
      if (obj instanceof protobuf.Service) {
        out.set(name, 'service');
        for (const m of obj.methodsArray) {
          m.resolve();
          out.set(`${name}/${m.name}`, `${m.resolvedRequestType!.fullName} -> ${m.resolvedResponseType!.fullName} stream:${Boolean(m.requestStream)}/${Boolean(m.responseStream)}`);
        }
      } else if (obj instanceof protobuf.Type) {
        out.set(name, 'message');
        for (const f of obj.fieldsArray) {
          f.resolve();
          const type = f.resolvedType ? f.resolvedType.fullName : f.type;
          const key = f instanceof protobuf.MapField ? ` map<${f.keyType}>` : '';
          const oneof = f.partOf && !f.partOf.name.startsWith('_') ? ` oneof:${f.partOf.name}` : '';
          const optional = (f.options as Record<string, unknown> | undefined)?.proto3_optional ? ' proto3-optional' : '';
          out.set(`${name}.${f.name}`, `#${f.id} ${f.repeated ? 'repeated ' : ''}${type}${key}${oneof}${optional}`);
        }
        visit(obj);
      } else if (obj instanceof protobuf.Enum) {
        out.set(name, 'enum');
        for (const [k, v] of Object.entries(obj.values)) out.set(`${name}.${k}`, `= ${v}`);
      } else if (obj instanceof protobuf.Namespace) {
        visit(obj);
      }
    }
  };
  visit(root);
  return out;
}

function differences(ours: Map<string, string>, theirs: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of theirs) if (ours.get(k) !== v) out.push(`${k}: upstream "${v}", pgark "${ours.get(k) ?? 'missing'}"`);
  for (const [k, v] of ours) if (!theirs.has(k)) out.push(`${k}: pgark "${v}" is not upstream`);
  return out;
}

test('pgark defines exactly the upstream CNPG-I packages, services, methods, messages, fields and enums', () => {
  const ours = facts(PROTO_DIR, PROTO_FILES);
  const theirs = facts(REFERENCE_PROTO_DIR, PROTO_FILES);
  assert.deepEqual(differences(ours, theirs), []);
  // The comparison covers what matters: the odd package of RestoreJobHooks and an optional field.
  assert.equal(theirs.get('cnpgi.wal.v1.RestoreJobHooks/Restore'), '.cnpgi.wal.v1.RestoreRequest -> .cnpgi.wal.v1.RestoreResponse stream:false/false');
  assert.equal(ours.get('cnpgi.wal.v1.WALArchiveRequest.check_empty_wal_archive'), '#4 bool proto3-optional');
  assert.equal(ours.get('cnpgi.wal.v1.WALRestoreRequest.Mode.MODE_REWIND'), '= 2');
  assert.ok(ours.size > 250, `only ${ours.size} facts compared`);
});

test('a copy of pgark\'s files with one field number changed fails the comparison', () => {
  const dir = scratchDir('proto-mutant');
  try {
    cpSync(PROTO_DIR, dir.path, { recursive: true });
    const file = join(dir.path, 'wal.proto');
    const text = readFileSync(file, 'utf8');
    const mutated = text.replace('string source_file_name = 2;', 'string source_file_name = 5;');
    assert.notEqual(mutated, text, 'the mutation must apply');
    writeFileSync(file, mutated);
    const diff = differences(facts(dir.path, PROTO_FILES), facts(REFERENCE_PROTO_DIR, PROTO_FILES));
    assert.deepEqual(diff, ['cnpgi.wal.v1.WALArchiveRequest.source_file_name: upstream "#2 string", pgark "#5 string"']);
  } finally {
    dir.cleanup();
  }
});
