import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineRule } from './policy-defaults.js';
import { createPathRules } from './policy-match.js';

const b = (s: string) => Buffer.from(s);

describe('policy path rules', () => {
  it('matches a path under a rule path, never a sibling sharing its prefix', () => {
    const rules = createPathRules([defineRule({ name: 'etc', paths: ['/etc/'] })]);
    assert.equal(rules.match(b('/etc'))?.rule.name, 'etc');
    assert.equal(rules.match(b('/etc/passwd'))?.root, '/etc/');
    assert.equal(rules.match(b('/etc2/passwd')), null);
    assert.equal(rules.match(b('/et')), null);
  });

  it('counts depth below the rule path, from / too', () => {
    const rules = createPathRules([defineRule({ name: 'top', paths: ['/'], maxDepth: 1 })]);
    assert.ok(rules.match(b('/')));
    assert.ok(rules.match(b('/usr')));
    assert.equal(rules.match(b('/usr/bin')), null);
    assert.equal(rules.enter(b('/')), true);
    assert.equal(rules.enter(b('/usr')), false, 'depth 1: what is below /usr is out of reach');
    const deep = createPathRules([defineRule({ name: 'd', paths: ['/srv'], maxDepth: 2 })]);
    assert.ok(deep.match(b('/srv/a/b')));
    assert.equal(deep.match(b('/srv/a/b/c')), null);
  });

  it('applies exclude and include globs, also to names that are not UTF-8', () => {
    const rules = createPathRules([defineRule({ name: 'r', paths: ['/data'], exclude: ['**/*.swp'], include: ['**/*.conf', '**/sub'] })]);
    assert.ok(rules.match(b('/data/a.conf')));
    assert.equal(rules.match(b('/data/a.swp')), null);
    assert.equal(rules.match(b('/data/a.txt')), null, 'not included');
    assert.equal(rules.enter(b('/data/sub')), true, 'include does not stop the walk');
    const odd = Buffer.concat([b('/data/x'), Buffer.from([0xff]), b('.swp')]);
    assert.equal(rules.match(odd), null, 'excluded by its shown name');
  });

  it('takes the first rule that records a path, and walks through directories above rule paths', () => {
    const rules = createPathRules([
      defineRule({ name: 'first', paths: ['/srv/app'], exclude: ['**/*.log'] }),
      defineRule({ name: 'second', paths: ['/srv'] }),
    ]);
    assert.equal(rules.match(b('/srv/app/x'))?.rule.name, 'first');
    assert.equal(rules.match(b('/srv/app/x.log'))?.rule.name, 'second', 'excluded by the first, recorded by the next');
    assert.equal(rules.match(b('/'))?.rule.name, undefined);
    const narrow = createPathRules([defineRule({ name: 'n', paths: ['/var/lib/app'] })]);
    assert.equal(narrow.enter(b('/')), true);
    assert.equal(narrow.enter(b('/var')), true);
    assert.equal(narrow.enter(b('/var/lib')), true);
    assert.equal(narrow.enter(b('/var/log')), false);
    assert.equal(narrow.enter(b('/var/lib/ap')), false);
  });
});
