import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineRule, expandAttributes, parsePolicyYaml, policyToDocument, PolicyError, validatePolicy } from './policy-schema.js';

const fails = (yaml: string, pattern: RegExp) =>
  assert.throws(() => parsePolicyYaml(yaml, 'p.yaml'), (e: unknown) => e instanceof PolicyError && e.code === 'invalid_policy' && pattern.test(e.message));

describe('policy YAML', () => {
  it('takes acl and selinux as attribute names, as AIDE does', () => {
    assert.deepEqual(parsePolicyYaml('rules:\n  - name: etc\n    paths: [/etc]\n    attributes: R+acl+selinux\n').rules[0]!.attributes.slice(-2), ['acl', 'selinux']);
  });

  it('drops a trailing slash from a path, so what the agent reports under it is normalised', () => {
    assert.deepEqual(parsePolicyYaml('rules:\n  - name: etc\n    paths: [/etc/, /, /srv///]\n').rules[0]!.paths, ['/etc', '/', '/srv']);
  });

  it('parses a valid policy with defaults', () => {
    const { rules, limits } = parsePolicyYaml('rules:\n  - name: etc\n    paths: [/etc]\n');
    assert.deepEqual(rules, [defineRule({ name: 'etc', paths: ['/etc'] })]);
    assert.deepEqual(limits, { maxFilesPerRule: null, nice: 10, ioBytesPerSecond: null, queueBytes: null, maxWatches: null });
  });

  it('names the field of every error', () => {
    fails('rules:\n  - name: etc\n    paths: [/etc]\n    alrt: true\n', /p\.yaml: rules\[0\]\.alrt: unknown key/);
    fails('rules:\n  - name: etc\n    paths: [etc]\n', /rules\[0\]\.paths\[0\]: must be an absolute path/);
    fails('rules:\n  - name: etc\n    paths: []\n', /rules\[0\]\.paths: needs at least one path/);
    fails('rules:\n  - name: etc\n    paths: [/etc/../root]\n', /rules\[0\]\.paths\[0\]: must be a normalised absolute path/);
    fails('rules:\n  - name: etc\n    paths: ["/etc//ssh"]\n', /rules\[0\]\.paths\[0\]: must be a normalised/);
    fails('rules:\n  - name: etc\n    paths: [/etc/./ssh]\n', /rules\[0\]\.paths\[0\]: must be a normalised/);
    fails('rules:\n  - name: etc\n    paths: [/etc]\n    alert: "yes"\n', /rules\[0\]\.alert/);
    fails('rules:\n  - name: a\n    paths: [/a]\n  - name: a\n    paths: [/b]\n', /rules\[1\]\.name: duplicate rule name/);
    fails('rules: []\nlimits:\n  max_watches: 0\n', /limits\.max_watches/);
    fails('rules: []\nlimits:\n  max_watches: many\n', /limits\.max_watches/);
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

describe('policy options', () => {
  it('parses depth, file systems, attribute groups, sizes, intervals and limits', () => {
    const { rules, limits } = parsePolicyYaml(
      [
        'rules:',
        '  - name: logs',
        '    paths: [/var/log]',
        '    include: ["**/*.log"]',
        '    depth: 2',
        '    one_filesystem: false',
        '    attributes: ">"',
        '    max_hash_size: 1GiB',
        '    recheck: 30m',
        '    rehash: 1d',
        'limits:',
        '  max_files_per_rule: 1000',
        '  nice: 19',
        '  io_mb_per_s: 2.5',
        '  queue_size: 64MiB',
        '  max_watches: 5000',
        '',
      ].join('\n'),
    );
    assert.deepEqual(rules[0], {
      name: 'logs',
      paths: ['/var/log'],
      include: ['**/*.log'],
      exclude: [],
      alert: false,
      selector: {},
      maxDepth: 2,
      crossFileSystems: true,
      attributes: ['type', 'perm', 'inode', 'nlink', 'owner', 'group', 'growing'],
      maxHashBytes: 2 ** 30,
      recheckSeconds: 1800,
      rehashSeconds: 86400,
      hashAlgorithm: 'sha256',
      followSymlinks: false,
    });
    assert.deepEqual(limits, { maxFilesPerRule: 1000, nice: 19, ioBytesPerSecond: 2_500_000, queueBytes: 64 * 1024 * 1024, maxWatches: 5000 });
  });

  it('expands AIDE-style attribute expressions', () => {
    assert.deepEqual(expandAttributes('R-mtime-ctime'), ['type', 'perm', 'inode', 'nlink', 'owner', 'group', 'size', 'hash']);
    assert.deepEqual(expandAttributes('L+s'), ['type', 'perm', 'inode', 'nlink', 'owner', 'group', 'size']);
    assert.deepEqual(expandAttributes(['p', 'u', 'g', 'sha256']), ['perm', 'owner', 'group', 'hash']);
    assert.deepEqual(expandAttributes('E'), []);
    assert.deepEqual(expandAttributes('L+X'), ['type', 'perm', 'inode', 'nlink', 'owner', 'group', 'xattrs']);
    assert.deepEqual(expandAttributes('R+xattrs'), ['type', 'perm', 'inode', 'nlink', 'owner', 'group', 'size', 'mtime', 'ctime', 'hash', 'xattrs']);
    assert.throws(() => expandAttributes('R+md5'), /unknown attribute or group "md5"/);
  });

  it('names the field of a bad option', () => {
    fails('rules:\n  - name: a\n    paths: [/a]\n    attributes: R+xattrz\n', /rules\[0\]\.attributes: unknown attribute or group "xattrz"/);
    fails('rules:\n  - name: a\n    paths: [/a]\n    recheck: soon\n', /rules\[0\]\.recheck: a duration/);
    fails('rules:\n  - name: a\n    paths: [/a]\n    max_hash_size: lots\n', /rules\[0\]\.max_hash_size/);
    fails('rules:\n  - name: a\n    paths: [/a]\n    depth: -1\n', /rules\[0\]\.depth/);
    fails('rules: []\nlimits:\n  nice: 40\n', /limits\.nice/);
    fails('rules:\n  - name: a\n    paths: [/a]\n    hash: md5\n', /rules\[0\]\.hash/);
  });

  it('round-trips through the document form the wire is checked with', () => {
    const parsed = parsePolicyYaml('rules:\n  - name: a\n    paths: [/a]\n    attributes: L\n    depth: 3\n    hash: blake2b512\n    selector: {env: prod}\nlimits:\n  nice: 5\n');
    assert.deepEqual(validatePolicy(policyToDocument(parsed)), parsed);
  });
});
