import type { MessageInitShape } from '@bufbuild/protobuf';
import { policyToPb } from '../../proto/convert.js';
import type { ConnectResponseSchema } from '../../proto/gen/vigil/v1/agent_pb.js';
import type { AgentHub } from '../agent-hub.js';
import type { CurrentPolicy } from './current-policy.js';

/** Sends every agent connected here the part of the current policy its labels select. */
export function pushPolicy(hub: AgentHub<MessageInitShape<typeof ConnectResponseSchema>>, current: CurrentPolicy): number {
  let n = 0;
  for (const session of hub.all()) {
    const own = current.forLabels(session.labels);
    if (own && session.send({ msg: { case: 'policy', value: policyToPb(own.policy) } })) n++;
  }
  return n;
}
