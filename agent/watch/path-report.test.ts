import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { leftUnrecorded, mergeReports, plainReport, SEEN, type PathReport } from './path-report.js';

const at = new Date('2026-12-03T00:00:00Z');
const report = (seen: number, arrivedMark: number): PathReport => ({ path: Buffer.from('/w/f'), seen, firstAt: at, lastAt: at, arrivedMark });

describe('path reports', () => {
  it('a path seen created or written and gone when checked left something unrecorded', () => {
    assert.equal(leftUnrecorded(report(SEEN.CREATED | SEEN.REMOVED, 5)), true);
    assert.equal(leftUnrecorded(report(SEEN.WRITTEN | SEEN.REMOVED, 5)), true);
    assert.equal(leftUnrecorded(report(SEEN.CREATED, 5)), true, 'its removal not read yet: gone all the same');
    assert.equal(leftUnrecorded(report(SEEN.REMOVED, 0)), false, 'only removed: a plain deletion');
    assert.equal(leftUnrecorded(report(SEEN.ATTRIB | SEEN.REMOVED, 0)), false);
    assert.equal(leftUnrecorded(plainReport(Buffer.from('/w/f'), at)), false);
  });

  it('a file renamed into a name the watcher saw is recorded there, not as a vanished file', () => {
    assert.equal(leftUnrecorded(report(SEEN.CREATED | SEEN.WRITTEN | SEEN.RENAMED_AWAY, 5)), false);
    assert.equal(leftUnrecorded(report(SEEN.CREATED | SEEN.RENAMED_AWAY | SEEN.REMOVED, 5)), true, 'renamed away, made again and deleted');
  });

  it('an arrival a check read the path after is in the baseline already', () => {
    assert.equal(leftUnrecorded(report(SEEN.WRITTEN | SEEN.REMOVED, 5), 7), false);
    assert.equal(leftUnrecorded(report(SEEN.WRITTEN | SEEN.REMOVED, 9), 7), true);
  });

  it('merges two reports of a path: every kind of event, the first and last times, the latest arrival', () => {
    const a: PathReport = { path: Buffer.from('/w/f'), seen: SEEN.CREATED, firstAt: new Date(1000), lastAt: new Date(1000), arrivedMark: 3 };
    const b: PathReport = { path: Buffer.from('/w/f'), seen: SEEN.REMOVED, firstAt: new Date(2000), lastAt: new Date(2000), arrivedMark: 0 };
    const m = mergeReports(a, b);
    assert.equal(m.seen, SEEN.CREATED | SEEN.REMOVED);
    assert.equal(m.firstAt.getTime(), 1000);
    assert.equal(m.lastAt.getTime(), 2000);
    assert.equal(m.arrivedMark, 3);
  });
});
