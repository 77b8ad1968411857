/**
 * deploy/systemd (docs/deploy.md, "systemd"): both units pass `systemd-analyze verify` with no
 * warning about them, with /opt/vigil replaced by a temporary install whose bin/ runs this build
 * (verify refuses an ExecStart that is not executable); `systemd-analyze security --offline` rates
 * their exposure low; and the hardening, restart policy, state directory and command lines are the
 * ones docs/deploy.md describes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compileControllerConfig } from '../../controller/config.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const UNITS = join(REPO, 'deploy', 'systemd');
const ANALYZE = '/usr/bin/systemd-analyze';
const INSTALL = '/opt/vigil/';
const skip = existsSync(ANALYZE) ? false : `${ANALYZE} is not installed (Debian: apt-get install systemd)`;

/** Every value of every key of the [Service] section (a key may repeat). */
function serviceSection(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      continue;
    }
    if (section !== 'Service') continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

const one = (svc: Map<string, string[]>, key: string) => {
  const v = svc.get(key);
  assert.ok(v, `${key} is not set`);
  return v.at(-1)!;
};

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
}

const PROGRAMS = {
  'vigil-controller': 'dist/controller/main.js',
  'vigil-agent': 'dist/agent/main.js',
} as const;

describe('deploy/systemd', { skip }, () => {
  const root = mkdtempSync(join(tmpdir(), 'vigil-systemd-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const install = join(root, 'opt', 'vigil');
  mkdirSync(join(install, 'bin'), { recursive: true });
  for (const [name, main] of Object.entries(PROGRAMS)) {
    // What the install's bin/ holds: the program of this build, run by this node.
    const bin = join(install, 'bin', name);
    writeFileSync(bin, `#!/bin/sh\nexec '${process.execPath}' '${join(REPO, main)}' "$@"\n`);
    chmodSync(bin, 0o755);
  }
  /** The unit with /opt/vigil/ pointing at the temporary install, written beside it. */
  const staged = (name: string, edit: (t: string) => string = (t) => t) => {
    const text = readFileSync(join(UNITS, `${name}.service`), 'utf8');
    assert.ok(text.includes(`ExecStart=${INSTALL}bin/${name} `), `${name}: ExecStart runs ${INSTALL}bin/${name}`);
    const dir = mkdtempSync(join(root, 'units-'));
    const file = join(dir, `${name}.service`);
    writeFileSync(file, edit(text.replaceAll(INSTALL, `${install}/`)));
    return file;
  };
  const verify = (file: string) => spawnSync(ANALYZE, ['verify', file], { encoding: 'utf8', timeout: 30_000 });
  /** Lines of verify's output about this unit (verify also reports on the machine's own units). */
  const about = (out: string, name: string) => out.split('\n').filter((l) => l.includes(`${name}.service`));

  for (const name of Object.keys(PROGRAMS)) {
    it(`${name}: systemd-analyze verify passes with nothing to say about the unit, and the program starts`, () => {
      const r = verify(staged(name));
      assert.equal(r.status, 0, `verify failed:\n${r.stderr}`);
      assert.deepEqual(about(r.stderr + r.stdout, name), [], 'verify warned about the unit');
      const help = spawnSync(join(install, 'bin', name), ['--help'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`Usage: ${name}`));
    });
  }

  it('verify does catch a mistake here: an unknown key, an ExecStart that is not there', () => {
    const typo = verify(staged('vigil-agent', (t) => t.replace(/^ProtectHome=/m, 'ProtectHom=')));
    assert.match(about(typo.stderr, 'vigil-agent').join('\n'), /Unknown key 'ProtectHom'/);
    const missing = verify(staged('vigil-agent', (t) => t.replace(/^(ExecStart=\S+)\/bin\/vigil-agent /m, '$1/bin/vigil-nope ')));
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /not executable/);
  });

  it('systemd-analyze security rates both units low exposure', (t) => {
    for (const name of Object.keys(PROGRAMS)) {
      const r = spawnSync(ANALYZE, ['security', '--offline=yes', staged(name)], { encoding: 'utf8', timeout: 30_000 });
      if (r.status !== 0 && /offline/.test(r.stderr)) return t.skip(`this systemd has no security --offline: ${r.stderr.trim()}`);
      const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(r.stdout + r.stderr);
      assert.ok(m, `no exposure level in:\n${r.stdout}${r.stderr}`);
      assert.ok(Number(m[1]) <= 3, `${name}: exposure ${m[1]} (at most 3.0 expected)\n${r.stdout}`);
    }
  });

  it('hardening, restart policy and state directory, as docs/deploy.md says', () => {
    const units = Object.fromEntries(Object.keys(PROGRAMS).map((n) => [n, serviceSection(readFileSync(join(UNITS, `${n}.service`), 'utf8'))]));
    for (const [name, svc] of Object.entries(units)) {
      assert.equal(one(svc, 'ProtectSystem'), 'strict', `${name}: ProtectSystem=strict`);
      assert.equal(one(svc, 'NoNewPrivileges'), 'yes', `${name}: NoNewPrivileges`);
      assert.equal(one(svc, 'PrivateTmp'), 'yes', `${name}: PrivateTmp`);
      assert.match(one(svc, 'Restart'), /^(on-failure|always)$/, `${name}: restarted`);
      assert.ok(one(svc, 'StateDirectory'), `${name}: a StateDirectory`);
      assert.notEqual(one(svc, 'User'), 'root', `${name}: its own user`);
      assert.equal(one(svc, 'UMask'), '0077');
    }
    const ctl = units['vigil-controller']!;
    assert.equal(one(ctl, 'ProtectHome'), 'yes');
    assert.equal(one(ctl, 'CapabilityBoundingSet'), '', 'the controller holds no capability');
    assert.ok(one(ctl, 'Environment').length);
    assert.ok(ctl.get('Environment')!.includes(`VIGIL_HOME=/var/lib/${one(ctl, 'StateDirectory')}`), 'VIGIL_HOME is the state directory');
    const ctlArgs = one(ctl, 'ExecStart').split(/\s+/);
    const defaults = compileControllerConfig({ home: '/nonexistent', env: {} });
    assert.equal(flag(ctlArgs, '--listen')?.split(':').at(-1), String(defaults.listen.port));
    assert.equal(flag(ctlArgs, '--enrol-listen')?.split(':').at(-1), String(defaults.enrolListen.port));
    assert.equal(flag(ctlArgs, '--metrics-listen'), '127.0.0.1:9464');

    const agent = units['vigil-agent']!;
    // A read-only view of everything: /home and /root too, for ~/.ssh and the like.
    assert.equal(one(agent, 'ProtectHome'), 'read-only');
    assert.equal(one(agent, 'CapabilityBoundingSet'), 'CAP_DAC_READ_SEARCH', 'reading every file, nothing else');
    assert.equal(one(agent, 'AmbientCapabilities'), 'CAP_DAC_READ_SEARCH');
    assert.ok(agent.get('Environment')!.includes('VIGIL_CAPTURE=0'), 'no CAP_SYS_ADMIN, so no fanotify capture, said explicitly');
    const agentArgs = one(agent, 'ExecStart').split(/\s+/);
    assert.equal(agentArgs[1], 'run');
    assert.equal(flag(agentArgs, '--state-dir'), `/var/lib/${one(agent, 'StateDirectory')}`, 'the agent keeps its state in its StateDirectory');
    assert.equal(flag(agentArgs, '--metrics-listen'), '127.0.0.1:9465');
  });
});
