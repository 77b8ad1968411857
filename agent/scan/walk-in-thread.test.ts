import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { defineRule } from '../../core/policy-defaults.js';
import { createPathRules } from '../../core/policy-match.js';
import type { PolicyRule } from '../../core/model.js';
import { walkInThread } from './walk-in-thread.js';
import { walkScope } from './walk-scope.js';
import { walkSorted } from './walker.js';

const line = (e: { depth: number; type: string; path: Buffer }) => `${e.depth} ${e.type} ${e.path.toString('hex')}`;

describe('walk on its own thread', () => {
  const root = mkdtempSync(join(tmpdir(), 'vigil-walkthread-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  // Enough entries for several chunks (and the read-ahead limit), names sorting around '/', a
  // non-UTF-8 name, links and a loop.
  for (let i = 0; i < 60; i++) {
    mkdirSync(join(root, `d${i}`, 'deep'), { recursive: true });
    for (let j = 0; j < 300; j++) writeFileSync(join(root, `d${i}`, 'deep', `f${j}`), '');
  }
  mkdirSync(join(root, 'a'));
  mkdirSync(join(root, 'a.b'));
  writeFileSync(join(root, 'a0'), 'y');
  writeFileSync(Buffer.concat([Buffer.from(join(root, 'a', 'n')), Buffer.from([0xff, 0x0a])]), 'odd');
  symlinkSync('..', join(root, 'a', 'up'));
  symlinkSync(join(root, 'd1'), join(root, 'to-d1'));
  const top = Buffer.from(root);

  const both = async (rules: PolicyRule[]) => {
    const expected = [...walkSorted(top, walkScope(top, createPathRules(rules)))].map(line);
    const got: string[] = [];
    for await (const chunk of walkInThread(top, rules)) for (const e of chunk) got.push(line(e));
    return { expected, got };
  };

  it('yields what the walk on this thread yields, in the same order, across many chunks', async () => {
    const { expected, got } = await both([defineRule({ name: 'r', paths: [root] })]);
    assert.ok(expected.length > 18_000);
    assert.deepEqual(got, expected);
  });

  it('keeps to the rules: depth, excludes, followed links with loops cut', async () => {
    const { expected, got } = await both([defineRule({ name: 'r', paths: [root], maxDepth: 2, exclude: ['**/d3'], followSymlinks: true })]);
    assert.ok(expected.some((l) => l.endsWith(Buffer.from('to-d1/deep').toString('hex'))), 'a followed link is walked into');
    assert.ok(!expected.some((l) => l.includes(Buffer.from('/d3/').toString('hex'))));
    assert.deepEqual(got, expected);
  });

  it('stops the thread when the reader stops early', async () => {
    let n = 0;
    for await (const chunk of walkInThread(top, [defineRule({ name: 'r', paths: [root] })])) {
      n += chunk.length;
      break;
    }
    assert.ok(n > 0);
  });
});
