import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { Policy } from '../../../core/model.js';
import { policyToPb } from '../../../proto/convert.js';
import { ConnectResponseSchema, type ConnectResponse } from '../../../proto/gen/vigil/v1/agent_pb.js';
import { PolicySchema } from '../../../proto/gen/vigil/v1/types_pb.js';
import type { DownMessage } from '../../fleet/down-message.js';

export type PbDownMessage = MessageInitShape<typeof ConnectResponseSchema>;

/**
 * A policy's wire message per Policy object: a push to 10,000 agents maps and encodes it once per
 * (version, rule selection), since the current policy hands every agent of one selection the same
 * object (policy/current-policy.ts). The policy is encoded to bytes once and carried as the raw
 * field `policy` of ConnectResponse, which protobuf-es writes as it stands: each stream's encoding
 * of the shared, read-only message is a copy of those bytes, and the bytes on the wire are the
 * ones a normal encoding gives (a test compares them). An old version's entry goes with its object.
 */
const policyMessages = new WeakMap<Policy, ConnectResponse>();
const POLICY_FIELD = ConnectResponseSchema.field.policy.number;

function policyMessage(policy: Policy): ConnectResponse {
  let msg = policyMessages.get(policy);
  if (!msg) {
    const encoded = toBinary(PolicySchema, policyToPb(policy));
    const data = new BinaryWriter().bytes(encoded).finish(); // length-prefixed, as an unknown field's data is
    msg = create(ConnectResponseSchema);
    msg.$unknown = [{ no: POLICY_FIELD, wireType: WireType.LengthDelimited, data }];
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
