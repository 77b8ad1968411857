import { create, type MessageInitShape } from '@bufbuild/protobuf';
import type { Policy } from '../../../core/model.js';
import { policyToPb } from '../../../proto/convert.js';
import { ConnectResponseSchema, type ConnectResponse } from '../../../proto/gen/vigil/v1/agent_pb.js';
import type { DownMessage } from '../../fleet/down-message.js';

export type PbDownMessage = MessageInitShape<typeof ConnectResponseSchema>;

/**
 * A policy's wire message per Policy object: a push to 10,000 agents maps it once per (version,
 * rule selection), since the current policy hands every agent of one selection the same object
 * (policy/current-policy.ts). The transport encodes and frames a shared message once and writes the
 * same bytes to every stream (agent-stream-route.ts). An old version's entry goes with its object.
 */
const policyMessages = new WeakMap<Policy, ConnectResponse>();

function policyMessage(policy: Policy): ConnectResponse {
  let msg = policyMessages.get(policy);
  if (!msg) {
    msg = create(ConnectResponseSchema, { msg: { case: 'policy', value: policyToPb(policy) } });
    policyMessages.set(policy, msg);
  }
  return msg;
}

/** The hub's messages (fleet/down-message.ts) on the wire: the only place they are mapped. */
export function downMessageToPb(m: DownMessage): PbDownMessage {
  switch (m.type) {
    case 'policy':
      return policyMessage(m.policy);
    case 'command':
      return { msg: { case: 'command', value: { id: m.command.id, kind: { case: m.command.kind, value: { fullHash: m.command.fullHash } } } } };
  }
}
