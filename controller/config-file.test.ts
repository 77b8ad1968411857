import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compileControllerConfig } from './config.js';
import { configFileEnv, readControllerConfigFile } from './config-file.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-config-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('controller config file', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads every setting, and the environment goes over it', () => {
    const f = readControllerConfigFile(
      file(
        'full.yaml',
        `listen: 127.0.0.1:9443
enrol_listen: 127.0.0.1:9444
metrics_listen: 127.0.0.1:9464
database_url: postgres://vigil@db:5432/vigil
slack: { token: xoxb-1, channel: C1 }
agent_cert_ttl: 12h
command_ttl: 2d
enrol_failures_per_minute: 5
ingest: { connections: 4 }
`,
      ),
    );
    const config = compileControllerConfig({ home: '/h', listen: f.listen, enrolListen: f.enrol_listen, env: { ...configFileEnv(f), VIGIL_INGEST_CONNECTIONS: '6' } });
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 9443 });
    assert.deepEqual(config.metricsListen, { host: '127.0.0.1', port: 9464 });
    assert.equal(config.databaseUrl, 'postgres://vigil@db:5432/vigil');
    assert.equal(config.slack?.channel, 'C1');
    assert.equal(config.agentCertLifetimeMs, 12 * 3_600_000);
    assert.equal(config.commandExpiryMs, 2 * 86_400_000);
    assert.equal(config.enrolFailures.max, 5);
    assert.equal(config.ingest.concurrency, 6, 'the environment over the file');
  });

  it('names the field of every problem, and refuses unknown keys', () => {
    const bad = file('bad.yaml', 'listen: nowhere\ningest: { connections: 0 }\nagent_cert_ttl: forever\nlisten_port: 1\n');
    assert.throws(() => readControllerConfigFile(bad), (err: Error) => {
      assert.match(err.message, /^.*bad\.yaml: /);
      for (const part of [/listen: expected HOST:PORT/, /ingest\.connections: /, /agent_cert_ttl: expected a duration/, /unknown key "listen_port"/]) assert.match(err.message, part);
      return true;
    });
    assert.throws(() => readControllerConfigFile(file('notyaml.yaml', 'listen: [unclosed\n')), /notyaml\.yaml: not YAML/);
    assert.throws(() => readControllerConfigFile(join(dir, 'missing.yaml')), /missing\.yaml: cannot read the config file \(ENOENT\)/);
    assert.throws(() => readControllerConfigFile(file('list.yaml', '- a\n- b\n')), /list\.yaml: \(top level\): /);
  });

  it('vigil-controller --config: a bad file is one line on stderr naming the field, exit 1; flags go over the file', () => {
    const main = fileURLToPath(new URL('./main.js', import.meta.url));
    const bad = spawnSync(process.execPath, [main, '--config', file('cli-bad.yaml', 'ingest: { connections: many }\n')], { encoding: 'utf8', env: { ...process.env, VIGIL_HOME: dir } });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^vigil-controller: .*cli-bad\.yaml: ingest\.connections: /);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
    // A good file with a listen address the flag replaces: the flag's bad value is what fails.
    const good = file('cli-good.yaml', 'listen: 127.0.0.1:9443\n');
    const flag = spawnSync(process.execPath, [main, '--config', good, '--listen', 'not-an-address'], { encoding: 'utf8', env: { ...process.env, VIGIL_HOME: dir } });
    assert.equal(flag.status, 1);
    assert.match(flag.stderr, /--listen: expected HOST:PORT, got "not-an-address"/);
  });
});
