import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { describe, it } from 'node:test';
import { DEFAULT_LIMITS, defineRule } from '../../../core/policy-schema.js';
import { policyFromPb } from '../../../proto/convert.js';
import { ConnectResponseSchema } from '../../../proto/gen/vigil/v1/agent_pb.js';
import { downMessageToPb } from './down-message-pb.js';

describe('down messages on the wire', () => {
  it('a policy goes down as the policy message, unchanged', () => {
    const policy = { version: 4, limits: DEFAULT_LIMITS, rules: [defineRule({ name: 'etc', paths: ['/etc'], alert: true })] };
    const msg = create(ConnectResponseSchema, downMessageToPb({ type: 'policy', policy }));
    assert.equal(msg.msg.case, 'policy');
    assert.deepEqual(msg.msg.case === 'policy' && policyFromPb(msg.msg.value), policy);
  });

  it('a rescan command goes down with its id and hashing choice', () => {
    for (const fullHash of [true, false]) {
      const msg = create(ConnectResponseSchema, downMessageToPb({ type: 'command', command: { id: 'cmd-9', kind: 'rescan', fullHash } }));
      assert.equal(msg.msg.case, 'command');
      const command = msg.msg.case === 'command' ? msg.msg.value : null;
      assert.equal(command?.id, 'cmd-9');
      assert.deepEqual(command?.kind.case === 'rescan' && command.kind.value.fullHash, fullHash);
    }
  });
});
