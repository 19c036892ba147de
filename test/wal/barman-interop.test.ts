/**
 * Interoperability with barman-cloud 3.4 on the same bucket: WAL files pgark archives (none,
 * gzip, bzip2, snappy) are fetched by barman-cloud-wal-restore byte-identical, and WAL files
 * barman-cloud-wal-archive stores (segments and .history) are restored by pgark byte-identical.
 *
 * barman's snappy path needs the fix in test/harness/barman-python (see its sitecustomize.py):
 * Debian's python3-snappy cannot compute its CRC-32C on Python 3.11.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStore, type StoreKind, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { craftSegment, fakePgdata, runBarman, runPgark, stopWalDaemon } from './helpers.js';

const CODECS = [
  { codec: 'none', flag: [] as string[] },
  { codec: 'gzip', flag: ['--gzip'] },
  { codec: 'bzip2', flag: ['--bzip2'] },
  { codec: 'snappy', flag: ['--snappy'] },
];

// Every codec on S3; Azure once (the codecs do not depend on the provider).
const RUNS: Array<{ kind: StoreKind; codecs: typeof CODECS }> = [
  { kind: 's3', codecs: CODECS },
  { kind: 'azure-connection-string', codecs: CODECS.filter((c) => c.codec === 'gzip') },
];

for (const { kind, codecs } of RUNS) {
  describe(`barman-cloud 3.4 and pgark share WAL archives on ${kind}`, () => {
    let store: TestStore;
    const dir = scratchDir(`walbarman-${kind}`);
    const pgdatas: string[] = [];
    let barmanEnv: Record<string, string>;
    before(async () => {
      store = await startStore(kind);
      barmanEnv = store.barman!.env;
    });
    after(async () => {
      for (const p of pgdatas) await stopWalDaemon(p);
      await store.stop();
      dir.cleanup();
    });

    function manifest(serverName: string, compression?: string): string {
      const file = join(dir.path, `${serverName}.yaml`);
      writeFileSync(file, store.manifest({ clusterName: 'pg', serverName, objectStore: compression === 'none' ? {} : { wal: { compression } } }));
      return file;
    }

    for (const { codec } of codecs) {
      test(`pgark-archived ${codec} segment -> barman-cloud-wal-restore, byte-identical`, async () => {
        const server = `pgark-${codec}`;
        const seg = '000000010000000A000000FE';
        const d = fakePgdata(join(dir.path, server));
        pgdatas.push(d.pgdata);
        const data = craftSegment(seg);
        const r = await runPgark(['wal-archive', '-f', manifest(server, codec), d.addReady(seg, data)], { cwd: d.pgdata });
        assert.equal(r.code, 0, r.stderr);
        const out = join(dir.path, `${server}.restored`);
        const b = runBarman('barman-cloud-wal-restore', [...store.barman!.args, store.destinationPath, server, seg, out], barmanEnv);
        assert.equal(b.code, 0, b.stderr);
        assert.ok(readFileSync(out).equals(data), 'barman restored different bytes');
      });
    }

    for (const { codec, flag } of codecs) {
      test(`barman-cloud-wal-archive ${codec} segment and .history -> pgark wal-restore, byte-identical`, async () => {
        const server = `barman-${codec}`;
        const seg = '0000000200000003000000FF';
        const src = fakePgdata(join(dir.path, `${server}-src`));
        const data = craftSegment(seg);
        const history = Buffer.from('1\t3/FF000000\tno recovery target specified\n');
        for (const [name, bytes] of [[seg, data], ['00000002.history', history]] as const) {
          src.addReady(name, bytes);
          const b = runBarman('barman-cloud-wal-archive', [...flag, ...store.barman!.args, store.destinationPath, server, join(src.walDir, name)], barmanEnv);
          assert.equal(b.code, 0, b.stderr);
        }
        const dst = fakePgdata(join(dir.path, `${server}-dst`));
        pgdatas.push(dst.pgdata);
        const cfg = manifest(server, 'zstd');
        for (const [name, bytes] of [[seg, data], ['00000002.history', history]] as const) {
          const r = await runPgark(['wal-restore', '-f', cfg, name, 'pg_wal/RECOVERYXLOG'], { cwd: dst.pgdata });
          assert.equal(r.code, 0, r.stderr);
          assert.ok(readFileSync(join(dst.walDir, 'RECOVERYXLOG')).equals(bytes), `${name} differs`);
        }
      });
    }
  });
}
