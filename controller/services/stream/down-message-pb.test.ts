import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { Policy } from '../../../core/model.js';
import { createFanoutBus } from '../../../test/support/fanout-bus.js';
import { createAgentHub, type AgentSession } from '../../fleet/agent-hub.js';
import { loadCurrentPolicy } from '../../policy/current-policy.js';
import { createPolicyDistribution } from '../../policy/distribution.js';
import type { PolicyStore } from '../../store/index.js';
import { DEFAULT_LIMITS, defineRule } from '../../../core/policy-schema.js';
import { policyFromPb, policyToPb } from '../../../proto/convert.js';
import { ConnectResponseSchema } from '../../../proto/gen/vigil/v1/agent_pb.js';
import { downMessageToPb } from './down-message-pb.js';

describe('down messages on the wire', () => {
  it('a policy goes down as the policy message, unchanged', () => {
    const policy = { version: 4, limits: DEFAULT_LIMITS, rules: [defineRule({ name: 'etc', paths: ['/etc'], alert: true })] };
    const bytes = toBinary(ConnectResponseSchema, create(ConnectResponseSchema, downMessageToPb({ type: 'policy', policy })));
    assert.deepEqual(bytes, toBinary(ConnectResponseSchema, create(ConnectResponseSchema, { msg: { case: 'policy', value: policyToPb(policy) } })), 'the bytes a normal encoding gives');
    const msg = fromBinary(ConnectResponseSchema, bytes);
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

  it('one policy push to 10,000 agents builds one wire message per rule selection, not one per agent', async () => {
    const rules = [defineRule({ name: 'web', paths: ['/srv/www'], selector: { role: 'web' } }), defineRule({ name: 'etc', paths: ['/etc'] })];
    let stored: Policy | null = null;
    const store: PolicyStore = {
      current: async () => stored,
      apply: async (p) => (stored = { version: (stored?.version ?? 0) + 1, ...p, rules: [...p.rules] }),
    };
    const current = await loadCurrentPolicy(store);
    const hub = createAgentHub({ onDuplicate: () => undefined });
    const messages = new Set<unknown>();
    let sends = 0;
    let bytes = 0;
    for (let i = 0; i < 10_000; i++) {
      // Every agent has labels of its own (its host), and one of three roles: two rule selections.
      const labels = { host: `h${i}`, role: ['web', 'db', 'cache'][i % 3]! };
      const session: AgentSession = {
        agentId: `a${i}`,
        streamId: `s${i}`,
        labels,
        remoteAddress: '192.0.2.1',
        connectedAt: new Date(),
        send: (m) => {
          const msg = create(ConnectResponseSchema, downMessageToPb(m));
          messages.add(msg);
          bytes += toBinary(ConnectResponseSchema, msg).length; // as the stream's serialisation does
          return ++sends > 0;
        },
        close: () => undefined,
      };
      hub.attach(session);
    }
    const distribution = createPolicyDistribution({ current, store, hub, fanout: createFanoutBus().replica(), logger: pino({ level: 'silent' }) });
    const t0 = performance.now();
    const { pushedTo } = await distribution.apply({ rules, limits: DEFAULT_LIMITS }, 'op');
    const ms = performance.now() - t0;
    assert.equal(pushedTo, 10_000);
    assert.equal(sends, 10_000);
    assert.equal(messages.size, 2, 'web+etc, and etc alone');
    assert.ok(bytes > 10_000 * 20, 'every stream encoded its copy');
    // The next version: new messages, again one per selection.
    await distribution.apply({ rules: rules.slice(1), limits: DEFAULT_LIMITS }, 'op');
    assert.equal(messages.size, 3);
    assert.ok(ms < 2000, `the push took ${ms.toFixed(0)} ms`);
  });
});
