import type { MessageInitShape } from '@bufbuild/protobuf';
import { policyToPb } from '../../../proto/convert.js';
import type { ConnectResponseSchema } from '../../../proto/gen/vigil/v1/agent_pb.js';
import type { DownMessage } from '../../fleet/down-message.js';

export type PbDownMessage = MessageInitShape<typeof ConnectResponseSchema>;

/** The hub's messages (fleet/down-message.ts) on the wire: the only place they are mapped. */
export function downMessageToPb(m: DownMessage): PbDownMessage {
  switch (m.type) {
    case 'policy':
      return { msg: { case: 'policy', value: policyToPb(m.policy) } };
    case 'command':
      return { msg: { case: 'command', value: { id: m.command.id, kind: { case: m.command.kind, value: { fullHash: m.command.fullHash } } } } };
  }
}
