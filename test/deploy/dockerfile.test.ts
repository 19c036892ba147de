/**
 * The Dockerfile checked by its contents: no container engine runs in the test environment, so the
 * image is not built here. What a build would need is checked instead: every COPY source exists (the
 * build stage's outputs as a local `tsc` build leaves them), nothing .dockerignore drops is copied,
 * the runtime stage gets production dependencies only and the compiled code imports no dev
 * dependency, the user is numeric and not root, TMPDIR and HOME suit a read-only root filesystem,
 * and the ENTRYPOINT is an executable launcher that runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const REPO = process.cwd();

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  workdir: string;
  steps: Instruction[];
}

/** The Dockerfile's stages: continuation lines joined, comments dropped. */
function stages(): Stage[] {
  const text = readFileSync(join(REPO, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const out: Stage[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!m || line.trim().startsWith('#')) continue;
    const [, op, args] = m;
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args.trim())!;
      out.push({ from: f[1], name: f[2], workdir: '/', steps: [] });
      continue;
    }
    const stage = out[out.length - 1];
    if (op === 'WORKDIR') stage.workdir = args.trim();
    stage.steps.push({ op, args: args.trim() });
  }
  return out;
}

interface Copy {
  from?: string;
  sources: string[];
  dest: string;
}
function copies(stage: Stage): Copy[] {
  return stage.steps
    .filter((s) => s.op === 'COPY')
    .map((s) => {
      const words = s.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const paths = words.filter((w) => !w.startsWith('--'));
      return { from, sources: paths.slice(0, -1), dest: paths[paths.length - 1] };
    });
}

const ignored = () =>
  readFileSync(join(REPO, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

test('two stages: a build stage and a slim Node 20 runtime', () => {
  const s = stages();
  assert.equal(s.length, 2);
  assert.equal(s[0].name, 'build');
  assert.match(s[1].from, /^node:20-[a-z]+-slim$/);
  assert.ok(s[0].steps.some((i) => i.op === 'RUN' && /npm ci\b/.test(i.args)), 'the build stage installs with npm ci');
  assert.ok(s[0].steps.some((i) => i.op === 'RUN' && /npx tsc -p tsconfig\.json/.test(i.args)), 'the build stage compiles');
});

test('every COPY source exists, and none is dropped by .dockerignore', () => {
  const [build, runtime] = stages();
  const drop = ignored();
  for (const stage of [build, runtime]) {
    for (const c of copies(stage)) {
      for (const src of c.sources) {
        if (c.from === undefined) {
          assert.ok(existsSync(join(REPO, src)), `COPY ${src}: not in the build context`);
          assert.ok(!drop.includes(src), `COPY ${src}: .dockerignore drops it`);
        } else {
          assert.equal(c.from, build.name, 'runtime copies only from the build stage');
          // /build/dist/src is what `npx tsc` writes in the build stage; a local build writes the same tree.
          const rel = src.startsWith(`${build.workdir}/`) ? src.slice(build.workdir.length + 1) : src;
          assert.ok(existsSync(join(REPO, rel)), `COPY --from=${c.from} ${src}: the build stage would not have ${rel}`);
        }
      }
    }
  }
  for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'scripts/bundle.mjs']) {
    assert.ok(copies(build).some((c) => c.sources.includes(needed)), `the build stage copies ${needed}`);
  }
});

test('the runtime stage gets dist/ (compiled and bundled), bin/, proto/ and production node_modules only', () => {
  const [build, runtime] = stages();
  const sources = copies(runtime).flatMap((c) => c.sources.map((s) => s.replace(`${build.workdir}/`, '')));
  assert.deepEqual(sources.sort(), ['bin', 'dist/bundle', 'dist/src', 'node_modules', 'package.json', 'proto']);
  assert.ok(build.steps.some((i) => i.op === 'RUN' && /node scripts\/bundle\.mjs/.test(i.args)), 'the build stage bundles (bin/pgark.js runs the bundle)');
  const steps = build.steps.map((s) => s.args);
  const prune = steps.findIndex((a) => /npm prune --omit=dev/.test(a));
  const lastCi = steps.map((a) => /npm ci\b/.test(a)).lastIndexOf(true);
  assert.ok(prune > lastCi, 'dev dependencies are pruned after the last npm ci');
  for (const dir of ['node_modules', 'dist', 'test', 'bench', 'demo']) assert.ok(ignored().includes(dir), `.dockerignore drops ${dir}`);

  // What is left after the prune must be enough: the compiled program imports no dev dependency.
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  const dev = new Set(Object.keys(pkg.devDependencies));
  const prod = new Set(Object.keys(pkg.dependencies));
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : n.endsWith('.js') ? [join(dir, n)] : []));
  const imported = new Set<string>();
  for (const f of [...files(join(REPO, 'dist/src')), ...files(join(REPO, 'dist/bundle')), join(REPO, 'bin/pgark.js')]) {
    const text = readFileSync(f, 'utf8');
    const statements = /^(?:(?:import|export)\b[^;'"]*?\bfrom\s*|import\s*)['"]([^'".][^'"]*)['"]/gm;
    const dynamic = /\bimport\(\s*['"]([^'".][^'"]*)['"]\s*\)/g;
    for (const m of [...text.matchAll(statements), ...text.matchAll(dynamic)]) {
      if (m[1].startsWith('node:')) continue;
      imported.add(m[1].startsWith('@') ? m[1].split('/').slice(0, 2).join('/') : m[1].split('/')[0]);
    }
  }
  assert.ok(imported.size >= 10, `only ${imported.size} packages imported: the scan is broken`);
  for (const name of imported) {
    assert.ok(!dev.has(name), `dist/src imports the dev dependency ${name}`);
    assert.ok(prod.has(name), `dist/src imports ${name}, which is not a dependency`);
  }
});

test('a numeric non-root user, and TMPDIR and HOME on a writable mount for a read-only root filesystem', () => {
  const runtime = stages()[1];
  const users = runtime.steps.filter((s) => s.op === 'USER');
  assert.equal(users.length, 1);
  const m = /^(\d+)(?::(\d+))?$/.exec(users[0].args);
  assert.ok(m, `USER ${users[0].args} is not numeric (Kubernetes' runAsNonRoot cannot check a name)`);
  assert.notEqual(Number(m[1]), 0);
  assert.equal(Number(m[1]), 26, 'the postgres UID of CloudNativePG images, which owns PGDATA');
  const env = runtime.steps.filter((s) => s.op === 'ENV').map((s) => s.args).join(' ');
  assert.match(env, /\bTMPDIR=\/tmp\b/);
  assert.match(env, /\bHOME=\/tmp\b/);
  // The RUN that creates the user runs before USER: later steps would run as 26 without write access.
  const userAt = runtime.steps.indexOf(users[0]);
  assert.ok(runtime.steps.slice(userAt + 1).every((s) => s.op !== 'RUN'), 'no RUN after USER');
  assert.ok(runtime.steps.slice(0, userAt).some((s) => s.op === 'RUN' && /useradd .*--uid 26\b/.test(s.args)), 'UID 26 has a passwd entry (libpq looks the user up)');
});

test('the ENTRYPOINT is bin/pgark, executable, and runs', () => {
  const runtime = stages()[1];
  const entry = runtime.steps.find((s) => s.op === 'ENTRYPOINT')!;
  const argv = JSON.parse(entry.args) as string[];
  assert.equal(argv.length, 1);
  assert.ok(argv[0].startsWith(`${runtime.workdir}/`), 'an absolute path inside the WORKDIR');
  const rel = argv[0].slice(runtime.workdir.length + 1);
  assert.equal(rel, 'bin/pgark');
  assert.ok(copies(runtime).some((c) => c.sources.includes('bin') && c.dest === './bin'), 'bin/ is copied to ./bin');
  assert.ok((statSync(join(REPO, rel)).mode & 0o111) === 0o111, 'bin/pgark is executable by everyone (the image runs it as UID 26)');
  const cmd = JSON.parse(runtime.steps.find((s) => s.op === 'CMD')!.args) as string[];
  const r = spawnSync(join(REPO, rel), cmd, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Usage: pgark/);
  assert.match(r.stdout, /\bmigrate\b/);
});
