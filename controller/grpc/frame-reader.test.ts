import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ControllerError } from '../errors.js';
import { createFrameReader, frameMessage } from './frame-reader.js';

const msg = (n: number, fill: number) => Buffer.alloc(n, fill);

describe('gRPC frame reader', () => {
  it('cuts messages however the chunks split them, including empty ones', () => {
    const messages = [msg(0, 0), msg(1, 1), msg(300, 2), msg(70_000, 3), msg(5, 4)];
    const wire = Buffer.concat(messages.map(frameMessage));
    for (const step of [1, 3, 5, 7, 4096, wire.length]) {
      const reader = createFrameReader(1 << 20);
      const got: Buffer[] = [];
      for (let i = 0; i < wire.length; i += step) got.push(...reader.push(wire.subarray(i, i + step)));
      assert.deepEqual(
        got.map((b) => [b.length, b[0]]),
        messages.map((b) => [b.length, b[0]]),
        `chunks of ${step}`,
      );
      assert.ok(got.every((b, i) => b.equals(messages[i]!)));
      assert.equal(reader.partial, 0);
    }
  });

  it('holds a partial message until its last byte', () => {
    const reader = createFrameReader(100);
    const f = frameMessage(msg(50, 9));
    assert.deepEqual(reader.push(f.subarray(0, 30)), []);
    assert.equal(reader.partial, 25);
    assert.equal(reader.push(f.subarray(30))[0]!.length, 50);
  });

  it('refuses a message over the limit from its prefix alone, as resource_exhausted', () => {
    const reader = createFrameReader(1000);
    const prefix = Buffer.from([0, 0, 0x98, 0x96, 0x80]); // 10,000,000 bytes announced, none sent
    assert.throws(
      () => reader.push(prefix),
      (e: unknown) => e instanceof ControllerError && e.code === 'resource_exhausted' && /10000000 bytes is over the limit of 1000/.test(e.message),
    );
    assert.equal(reader.partial, 0);
  });

  it('refuses a compressed message as invalid_argument', () => {
    const reader = createFrameReader(1000);
    const f = frameMessage(msg(10, 1));
    f[0] = 1;
    assert.throws(
      () => reader.push(f),
      (e: unknown) => e instanceof ControllerError && e.code === 'invalid_argument' && /compressed/.test(e.message),
    );
  });
});
