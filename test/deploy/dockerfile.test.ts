/**
 * The Dockerfile and .dockerignore (docs/deploy.md, "Containers"). Docker is not available where
 * the tests run, so this checks what can be checked without it: the stages are shaped as intended,
 * every path the Dockerfile copies exists (after `npm run build`, which the tests need anyway) and
 * is not excluded from the build context, and the run stage's own steps, performed in a temporary
 * directory with no C compiler, make, or python on PATH, give an install whose programs start and
 * whose native code (the agent's addon, lmdb's prebuilt binary) loads.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, isAbsolute, join, posix, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** Tests run from dist/test/deploy/. */
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly line: number;
}

interface Stage {
  readonly name: string;
  readonly from: string;
  readonly instructions: Instruction[];
}

/** Enough of the Dockerfile grammar for this file: comments, `\` continuations, FROM … AS name. */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\')) {
      line = line.slice(0, -1);
      i++;
      while (i < lines.length && /^\s*#/.test(lines[i]!)) i++;
      line += ` ${(lines[i] ?? '').trim()}`;
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    assert.ok(m, `Dockerfile:${start}: not an instruction: ${line}`);
    const op = m[1]!.toUpperCase();
    const rest = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      assert.ok(f, `Dockerfile:${start}: FROM ${rest}`);
      stages.push({ name: f[2] ?? String(stages.length), from: f[1]!, instructions: [] });
    } else if (op === 'ARG' && stages.length === 0) {
      const [k, v = ''] = rest.split('=');
      args.set(k!, v);
    } else {
      assert.ok(stages.length, `Dockerfile:${start}: ${op} before any FROM`);
      stages.at(-1)!.instructions.push({ op, args: rest, line: start });
    }
  }
  return { args, stages };
}

interface Copy {
  readonly from: string | undefined;
  readonly sources: string[];
  readonly dest: string;
  readonly line: number;
}

function parseCopy(ins: Instruction): Copy {
  assert.ok(!ins.args.startsWith('['), `Dockerfile:${ins.line}: the JSON form of COPY is not handled here`);
  const words = ins.args.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!;
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
    else assert.fail(`Dockerfile:${ins.line}: COPY flag ${flag} not handled here`);
  }
  assert.ok(words.length >= 2, `Dockerfile:${ins.line}: COPY needs a source and a destination`);
  return { from, sources: words.slice(0, -1), dest: words.at(-1)!, line: ins.line };
}

/** A stage and the stages it is built FROM, base first. */
function chain(stages: readonly Stage[], name: string): Stage[] {
  const stage = stages.find((s) => s.name === name);
  assert.ok(stage, `no stage named ${name}`);
  const base = stages.find((s) => s.name === stage.from);
  return base ? [...chain(stages, base.name), stage] : [stage];
}

function workdirOf(stage: Stage, initial = '/'): string {
  let dir = initial;
  for (const ins of stage.instructions) if (ins.op === 'WORKDIR') dir = posix.resolve(dir, ins.args);
  return dir;
}

/** .dockerignore patterns: each is a path (or glob with a leading **\/) relative to the context. */
function ignoredBy(patterns: readonly string[], path: string): string | undefined {
  const p = posix.normalize(path).replace(/^\.\//, '').replace(/\/$/, '');
  for (const pat of patterns) {
    const bare = pat.replace(/^\*\*\//, '');
    const parts = p.split('/');
    const hits = pat.startsWith('**/') ? parts.some((_, i) => parts.slice(i).join('/').startsWith(bare)) : p === bare || p.startsWith(`${bare}/`) || bare.startsWith('*.') && p.endsWith(bare.slice(1));
    if (hits) return pat;
  }
  return undefined;
}

const dockerfile = parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
const ignore = readFileSync(join(REPO, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const stageNamed = (name: string) => dockerfile.stages.find((s) => s.name === name)!;
const TARGETS = ['agent', 'controller'] as const;

describe('Dockerfile', () => {
  it('has a build stage with the C toolchain that runs npm ci, and agent and controller targets on a slim Node 20 image as a non-root user', () => {
    const names = dockerfile.stages.map((s) => s.name);
    for (const n of ['build', 'runtime', ...TARGETS]) assert.ok(names.includes(n), `stage ${n} missing (stages: ${names.join(', ')})`);
    assert.equal(names.at(-1), 'controller', 'the default target (the last stage) is the controller');
    const image = dockerfile.args.get('NODE_IMAGE');
    assert.match(image ?? '', /^node:20[-.\w]*-slim$/, 'NODE_IMAGE: a slim Node 20 image');
    const build = stageNamed('build');
    assert.equal(build.from, '${NODE_IMAGE}');
    const buildRuns = build.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
    assert.ok(buildRuns.some((r) => /apt-get install .*build-essential/.test(r) && /python3/.test(r)), 'the build stage installs build-essential and python3 (node-gyp)');
    assert.ok(buildRuns.some((r) => /\bnpm ci\b/.test(r) && !/--ignore-scripts|--omit/.test(r)), 'the build stage runs a full npm ci (its "prepare" builds)');
    for (const target of TARGETS) {
      const stages = chain(dockerfile.stages, target);
      assert.equal(stages[0]!.from, '${NODE_IMAGE}', `${target} is built on NODE_IMAGE`);
      assert.ok(!stages.some((s) => s.name === 'build'), `${target} does not inherit the build stage`);
      const all = stages.flatMap((s) => s.instructions);
      const users = all.filter((i) => i.op === 'USER');
      assert.ok(users.length, `${target}: a USER`);
      assert.match(users.at(-1)!.args, /^[1-9]\d*(:[1-9]\d*)?$/, `${target}: a numeric non-root USER (Kubernetes' runAsNonRoot checks numbers)`);
      const runs = all.filter((i) => i.op === 'RUN').map((i) => i.args);
      assert.ok(runs.some((r) => /\bnpm ci\b/.test(r) && /--omit=dev/.test(r) && /--ignore-scripts/.test(r)), `${target}: npm ci --omit=dev --ignore-scripts`);
      for (const r of runs) assert.doesNotMatch(r, /apt-get|build-essential|gcc|node-gyp|python/, `${target} installs no toolchain: ${r}`);
      assert.ok(all.some((i) => i.op === 'ENTRYPOINT'), `${target}: an ENTRYPOINT`);
    }
  });

  it('copies only paths that exist (after npm run build) and that .dockerignore leaves in the context', () => {
    const buildDir = workdirOf(stageNamed('build'));
    for (const stage of dockerfile.stages) {
      for (const ins of stage.instructions.filter((i) => i.op === 'COPY')) {
        const copy = parseCopy(ins);
        for (const src of copy.sources) {
          if (copy.from === undefined) {
            assert.ok(existsSync(join(REPO, src)), `Dockerfile:${copy.line}: ${src} is not in the repository`);
            assert.equal(ignoredBy(ignore, src), undefined, `Dockerfile:${copy.line}: ${src} is excluded by .dockerignore`);
          } else {
            assert.equal(copy.from, 'build', `Dockerfile:${copy.line}: copies from the build stage only`);
            assert.ok(src.startsWith(`${buildDir}/`), `Dockerfile:${copy.line}: ${src} is outside the build stage's WORKDIR ${buildDir}`);
            const local = join(REPO, src.slice(buildDir.length + 1));
            assert.ok(existsSync(local), `Dockerfile:${copy.line}: ${src} does not exist after a build (${local})`);
          }
        }
      }
    }
    // The build starts from clean sources: no local output or dependencies in the context.
    for (const p of ['node_modules', 'agent/native/build', 'dist', '.git', '.vigil']) assert.ok(ignoredBy(ignore, p), `.dockerignore leaves ${p} in the context`);
  });

  describe('the run stage, performed here with no compiler on PATH', { timeout: 120_000 }, () => {
    const root = mkdtempSync(join(tmpdir(), 'vigil-docker-'));
    after(() => rmSync(root, { recursive: true, force: true }));
    /** The image's filesystem root; the run stage's WORKDIR lands under it. */
    const image = join(root, 'image');
    const runtime = chain(dockerfile.stages, 'runtime');
    const appDir = workdirOf(runtime.at(-1)!);
    const inImage = (p: string) => join(image, posix.resolve(appDir, p));
    /** A PATH with node and npm and the shell's basics, without cc, gcc, make or python. */
    const bin = join(root, 'bin');
    const env: NodeJS.ProcessEnv = {
      PATH: bin,
      HOME: join(root, 'home'),
      // A copy of this machine's npm cache (the step ends with `npm cache clean`), used first.
      npm_config_cache: join(root, 'npm-cache'),
      npm_config_prefer_offline: 'true',
      npm_config_update_notifier: 'false',
    };

    before(() => {
      mkdirSync(bin, { recursive: true });
      mkdirSync(env.HOME!, { recursive: true });
      const npmCli = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin');
      symlinkSync(process.execPath, join(bin, 'node'));
      symlinkSync(join(npmCli, 'npm-cli.js'), join(bin, 'npm'));
      symlinkSync(join(npmCli, 'npx-cli.js'), join(bin, 'npx'));
      for (const tool of ['sh', 'env', 'rm', 'cp', 'mkdir', 'ls', 'cat', 'chmod']) {
        const found = ['/bin', '/usr/bin'].map((d) => join(d, tool)).find((p) => existsSync(p));
        if (found) symlinkSync(found, join(bin, tool));
      }
      const cache = spawnSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).stdout?.trim() || join(homedir(), '.npm');
      if (existsSync(join(cache, '_cacache'))) cpSync(join(cache, '_cacache'), join(env.npm_config_cache!, '_cacache'), { recursive: true });

      // The runtime stage, instruction by instruction.
      mkdirSync(inImage('.'), { recursive: true });
      const buildDir = workdirOf(stageNamed('build'));
      for (const ins of runtime.flatMap((s) => s.instructions)) {
        if (ins.op === 'COPY') {
          const copy = parseCopy(ins);
          for (const src of copy.sources) {
            const from = copy.from === undefined ? join(REPO, src) : join(REPO, relative(buildDir, src));
            const dest = copy.dest.endsWith('/') || copy.sources.length > 1 ? join(inImage(copy.dest), posix.basename(src)) : inImage(copy.dest);
            mkdirSync(dirname(dest), { recursive: true });
            cpSync(from, dest, { recursive: true });
          }
        } else if (ins.op === 'ENV') {
          const [k, v] = ins.args.split('=');
          env[k!] = v;
        } else if (ins.op === 'RUN') {
          const r = spawnSync('sh', ['-c', ins.args], { cwd: inImage('.'), env, encoding: 'utf8', timeout: 90_000 });
          assert.equal(r.status, 0, `Dockerfile:${ins.line}: RUN ${ins.args}\n${r.stdout}\n${r.stderr}`);
        } else {
          assert.ok(['WORKDIR', 'USER', 'EXPOSE', 'ARG', 'LABEL'].includes(ins.op), `Dockerfile:${ins.line}: ${ins.op} not handled by this test`);
        }
      }
    });

    it('had no compiler to use', () => {
      for (const tool of ['cc', 'gcc', 'g++', 'make', 'python3', 'node-gyp']) {
        const r = spawnSync('sh', ['-c', `command -v ${tool}`], { env, encoding: 'utf8' });
        assert.notEqual(r.status, 0, `${tool} is on the test's PATH: ${r.stdout}`);
      }
      const r = spawnSync('sh', ['-c', 'command -v npm'], { env, encoding: 'utf8' });
      assert.equal(r.status, 0, 'npm is on the PATH');
    });

    it('installed the production dependencies only', () => {
      const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
      for (const dep of Object.keys(pkg.dependencies)) assert.ok(existsSync(inImage(`node_modules/${dep}/package.json`)), `${dep} installed`);
      // A dev dependency may also be a production dependency's dependency (protobufjs needs
      // @types/node): the lockfile says which are dev only.
      const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
      const devOnly = Object.keys(pkg.devDependencies).filter((dep) => lock.packages[`node_modules/${dep}`]?.dev);
      assert.ok(devOnly.includes('typescript') && devOnly.includes('kubernetes-models'), `dev-only dependencies per the lockfile: ${devOnly.join(', ')}`);
      for (const dep of devOnly) assert.ok(!existsSync(inImage(`node_modules/${dep}`)), `dev dependency ${dep} installed`);
    });

    it('loads the native addon and lmdb, and starts every program', () => {
      const check = inImage('native-check.mjs');
      writeFileSync(
        check,
        `import { open } from 'lmdb';
import { loadNativeAddon } from './dist/agent/native/addon.js';
const addon = loadNativeAddon();
if (!addon) throw new Error('the addon did not load');
const listing = addon.listDirectory(Buffer.from('.'));
if (typeof listing === 'number' || !listing.names.includes('dist')) throw new Error('listDirectory: ' + JSON.stringify(listing));
const db = open({ path: process.argv[2] });
await db.put('k', { v: 1 });
if (db.get('k')?.v !== 1) throw new Error('lmdb read back nothing');
await db.close();
console.log('native ok');
`,
      );
      const r = spawnSync('node', [check, join(root, 'lmdb')], { cwd: inImage('.'), env, encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /native ok/);

      for (const target of TARGETS) {
        const entry = chain(dockerfile.stages, target)
          .flatMap((s) => s.instructions)
          .filter((i) => i.op === 'ENTRYPOINT')
          .at(-1)!;
        const argv = JSON.parse(entry.args) as string[];
        assert.equal(argv[0], 'node', `${target}: ENTRYPOINT runs node`);
        assert.ok(isAbsolute(argv[1]!) && argv[1]!.startsWith(`${appDir}/`), `${target}: ENTRYPOINT's script is under ${appDir}`);
        const script = join(image, argv[1]!);
        const help = spawnSync('node', [script, '--help'], { cwd: inImage('.'), env, encoding: 'utf8', timeout: 30_000 });
        assert.equal(help.status, 0, `${target} --help: ${help.stderr}`);
        assert.match(help.stdout, new RegExp(`Usage: vigil-${target}`));
      }
      const ctl = spawnSync('node', [inImage('dist/controller/vigilctl/main.js'), '--help'], { cwd: inImage('.'), env, encoding: 'utf8', timeout: 30_000 });
      assert.equal(ctl.status, 0, `vigilctl --help: ${ctl.stderr}`);
    });
  });
});
