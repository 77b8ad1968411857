import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AGENT_DEFAULTS, compileAgentConfig } from './config.js';
import { AgentError } from './errors.js';

describe('agent config', () => {
  it('compiles an empty input to the documented defaults', () => {
    const c = compileAgentConfig({}, {});
    assert.deepEqual(c, AGENT_DEFAULTS);
    assert.equal(c.stream.batchSize, 500);
    assert.equal(c.stream.maxInFlight, 5000);
    assert.deepEqual(c.stream.backoff, { initialMs: 1000, maxMs: 15_000 });
    assert.equal(c.watch.coalesceMs, 50);
    assert.deepEqual(c.capture, { enabled: true, holdMs: 10_000, maxHeld: 4096 });
  });

  it('takes VIGIL_CAPTURE=0 or 1, and keeps the other capture options', () => {
    assert.equal(compileAgentConfig({ capture: { maxHeld: 10 } }, { VIGIL_CAPTURE: '0' }).capture.enabled, false);
    assert.deepEqual(compileAgentConfig({ capture: { maxHeld: 10 } }, { VIGIL_CAPTURE: '1' }).capture, { enabled: true, holdMs: 10_000, maxHeld: 10 });
  });

  it('refuses a bad value with an error naming the option', () => {
    const bad = (input: Parameters<typeof compileAgentConfig>[0], env: NodeJS.ProcessEnv, re: RegExp) =>
      assert.throws(() => compileAgentConfig(input, env), (e: unknown) => e instanceof AgentError && e.code === 'invalid_argument' && re.test(e.message));
    bad({}, { VIGIL_CAPTURE: 'yes' }, /VIGIL_CAPTURE: 0 or 1/);
    bad({ stream: { batchSize: 0 } }, {}, /stream\.batchSize/);
    bad({ stream: { backoff: { initialMs: 20_000, maxMs: 1000 } } }, {}, /backoff\.initialMs must not exceed/);
    bad({ watch: { coalesceMs: -1 } }, {}, /watch\.coalesceMs/);
  });
});
