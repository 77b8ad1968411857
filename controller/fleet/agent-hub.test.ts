import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recordingSession } from '../../test/support/agent-sessions.js';
import { createAgentHub, type AgentSession } from './agent-hub.js';

describe('agent hub', () => {
  it('finds attached sessions by agent id until they detach', () => {
    const hub = createAgentHub({ onDuplicate: () => assert.fail('no duplicate here') });
    const a = recordingSession('a');
    const b = recordingSession('b');
    const detachA = hub.attach(a);
    hub.attach(b);
    assert.equal(hub.get('a'), a);
    assert.deepEqual(hub.ids().sort(), ['a', 'b']);
    assert.deepEqual(hub.all().map((s) => s.agentId).sort(), ['a', 'b']);
    detachA();
    assert.equal(hub.get('a'), undefined);
    assert.deepEqual(hub.ids(), ['b']);
  });

  it('a second stream of one agent replaces the first and is reported with both', () => {
    const seen: [AgentSession, AgentSession][] = [];
    const hub = createAgentHub({ onDuplicate: (older, newer) => void seen.push([older, newer]) });
    const older = recordingSession('a', { remoteAddress: '192.0.2.1' });
    const newer = recordingSession('a', { remoteAddress: '192.0.2.66' });
    const detachOlder = hub.attach(older);
    hub.attach(newer);
    assert.deepEqual(seen, [[older, newer]]);
    assert.equal(hub.get('a'), newer);
    // The replaced stream ending later must not take the newer one out of the hub.
    detachOlder();
    assert.equal(hub.get('a'), newer);
  });

  it('carries domain messages: what a session is sent is what the hub was given', () => {
    const hub = createAgentHub({ onDuplicate: () => undefined });
    const s = recordingSession('a');
    hub.attach(s);
    const command = { type: 'command', command: { id: 'c1', kind: 'rescan', fullHash: true } } as const;
    assert.equal(hub.get('a')!.send(command), true);
    assert.deepEqual(s.sent, [command]);
  });
});
