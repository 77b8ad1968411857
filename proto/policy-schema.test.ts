import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePolicyYaml, PolicyError } from './policy-schema.js';

const fails = (yaml: string, pattern: RegExp) =>
  assert.throws(() => parsePolicyYaml(yaml, 'p.yaml'), (e: unknown) => e instanceof PolicyError && e.code === 'invalid_policy' && pattern.test(e.message));

describe('policy YAML', () => {
  it('parses a valid policy with defaults', () => {
    const rules = parsePolicyYaml('rules:\n  - name: etc\n    paths: [/etc]\n');
    assert.deepEqual(rules, [{ name: 'etc', paths: ['/etc'], exclude: [], alert: false, selector: {} }]);
  });

  it('names the field of every error', () => {
    fails('rules:\n  - name: etc\n    paths: [/etc]\n    alrt: true\n', /p\.yaml: rules\[0\]\.alrt: unknown key/);
    fails('rules:\n  - name: etc\n    paths: [etc]\n', /rules\[0\]\.paths\[0\]: must be an absolute path/);
    fails('rules:\n  - name: etc\n    paths: []\n', /rules\[0\]\.paths: needs at least one path/);
    fails('rules:\n  - name: etc\n    paths: [/etc]\n    alert: "yes"\n', /rules\[0\]\.alert/);
    fails('rules:\n  - name: a\n    paths: [/a]\n  - name: a\n    paths: [/b]\n', /rules\[1\]\.name: duplicate rule name/);
    fails('rulez: []\n', /rulez: unknown key/);
    fails('rules: [\n', /p\.yaml: line \d+: not valid YAML/);
    fails('rules:\n  - name: a\n    name: b\n    paths: [/a]\n', /not valid YAML/);
  });
});

describe('policy YAML, missing fields', () => {
  it('says a required field is missing', () => {
    fails('rules:\n  - paths: [/a]\n', /rules\[0\]\.name: missing \(required\)/);
    fails('{}\n', /rules: missing \(required\)/);
  });
});
