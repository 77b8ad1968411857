import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { VIGIL_VERSION } from './version.js';

describe('version', () => {
  it("is package.json's", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(VIGIL_VERSION, pkg.version);
  });
});
