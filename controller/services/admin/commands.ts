import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import type { AdminService } from '../../../proto/gen/vigil/v1/admin_pb.js';
import { scanSummaryToPb } from '../../../proto/scan-summary.js';
import { ControllerError } from '../../errors.js';
import type { AgentHub } from '../../fleet/agent-hub.js';
import type { AgentStore, AuditStore, CommandStore } from '../../store/index.js';
import { requireOperator } from '../peer-identity.js';

export interface CommandsDeps {
  readonly hub: AgentHub;
  readonly agents: AgentStore;
  readonly commands: CommandStore;
  readonly audit: AuditStore;
}

/** Most command ids one GetCommands call may ask about. */
const MAX_IDS = 10_000;

/** `vigilctl rescan`: commands sent to connected agents, and their scan reports. */
export function commandMethods(deps: CommandsDeps): Pick<ServiceImpl<typeof AdminService>, 'rescan' | 'getCommands'> {
  return {
    async rescan(req, ctx) {
      const op = requireOperator(ctx, 'admin');
      if (Boolean(req.agentId) === req.all) throw new ControllerError('invalid_argument', 'give exactly one of agent_id and all');
      let ids: string[];
      if (req.all) {
        ids = deps.hub.ids();
      } else {
        if (!(await deps.agents.get(req.agentId))) throw new ControllerError('not_found', `no agent ${req.agentId}`);
        ids = [req.agentId];
      }
      const targets = [];
      for (const agentId of ids) {
        const commandId = await deps.commands.create({ agentId, kind: 'rescan', args: { fullHash: req.fullHash }, createdBy: op.spiffeId });
        const delivered = deps.hub.get(agentId)?.send({ type: 'command', command: { id: commandId, kind: 'rescan', fullHash: req.fullHash } }) ?? false;
        if (delivered) await deps.commands.markDelivered(commandId);
        targets.push({ agentId, commandId, delivered });
      }
      await deps.audit.record({ actor: op.spiffeId, action: 'rescan', target: req.all ? '*' : req.agentId, details: { fullHash: req.fullHash, agents: ids.length } });
      return { targets };
    },

    async getCommands(req, ctx) {
      requireOperator(ctx, 'viewer');
      if (req.ids.length > MAX_IDS) throw new ControllerError('invalid_argument', `at most ${MAX_IDS} ids`);
      const commands = await deps.commands.get(req.ids);
      return {
        commands: commands.map((c) => ({
          id: c.id,
          agentId: c.agentId,
          kind: c.kind,
          createdAt: timestampFromDate(c.createdAt),
          deliveredAt: c.deliveredAt ? timestampFromDate(c.deliveredAt) : undefined,
          completedAt: c.completedAt ? timestampFromDate(c.completedAt) : undefined,
          scan: c.result ? scanSummaryToPb(c.result) : undefined,
        })),
      };
    },
  };
}
