import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readAgentConfigFile } from './config-file.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-agent-config-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('agent config file', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the state directory, the metrics address and the options in snake_case', () => {
    const f = readAgentConfigFile(file('ok.yaml', 'state_dir: /var/lib/vigil-agent\nmetrics_listen: 127.0.0.1:9465\nstream:\n  batch_size: 200\n  backoff: { initial_ms: 500, max_ms: 5000 }\nwatch: { coalesce_ms: 20 }\ncapture: { enabled: false }\n'), {});
    assert.equal(f.stateDir, '/var/lib/vigil-agent');
    assert.equal(f.metricsListen, '127.0.0.1:9465');
    assert.equal(f.compiled.stream.batchSize, 200);
    assert.deepEqual(f.compiled.stream.backoff, { initialMs: 500, maxMs: 5000 });
    assert.equal(f.compiled.watch.coalesceMs, 20);
    assert.equal(f.compiled.capture.enabled, false);
    assert.equal(f.compiled.stream.maxInFlight, 5000, 'defaults for what the file leaves out');
    // The environment goes over the file.
    assert.equal(readAgentConfigFile(file('cap.yaml', 'capture: { enabled: false }\n'), { VIGIL_CAPTURE: '1' }).compiled.capture.enabled, true);
  });

  it('names the field of every problem, in the file’s own names', () => {
    assert.throws(() => readAgentConfigFile(file('unknown.yaml', 'stream: { batch_sise: 10 }\nwatchh: {}\n'), {}), /unknown\.yaml: stream\.batch_sise: unknown key; watchh: unknown key/);
    assert.throws(() => readAgentConfigFile(file('range.yaml', 'stream: { batch_size: 5000 }\n'), {}), /range\.yaml: stream\.batch_size: /);
    assert.throws(() => readAgentConfigFile(file('type.yaml', 'watch: 5\n'), {}), /type\.yaml: watch: expected a mapping/);
    assert.throws(() => readAgentConfigFile(file('top.yaml', '- a\n'), {}), /top\.yaml: \(top level\): expected a mapping/);
    assert.throws(() => readAgentConfigFile(join(dir, 'nope.yaml'), {}), /nope\.yaml: cannot read the config file \(ENOENT\)/);
  });
});
