import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import type { AdminService, CommandStatusSchema } from '../../../proto/gen/vigil/v1/admin_pb.js';
import { scanSummaryToPb } from '../../../proto/scan-summary.js';
import { ControllerError } from '../../errors.js';
import type { CommandDispatch } from '../../fleet/command-dispatch.js';
import { COMMAND_STATES, type AgentStore, type AuditStore, type CommandRecord, type CommandState, type CommandStore } from '../../store/index.js';
import { requireOperator } from '../peer-identity.js';

export interface CommandsDeps {
  readonly agents: AgentStore;
  readonly commands: CommandStore;
  readonly dispatch: Pick<CommandDispatch, 'send'>;
  readonly audit: AuditStore;
}

/** Most command ids one GetCommands call may ask about, and most commands one ListCommands returns. */
const MAX_IDS = 10_000;
const DEFAULT_LIST = 50;
/** Longest lifetime a rescan may ask for. */
const MAX_EXPIRY_S = 30 * 86_400;

function commandStatusToPb(c: CommandRecord): MessageInitShape<typeof CommandStatusSchema> {
  return {
    id: c.id,
    agentId: c.agentId,
    kind: c.kind,
    createdAt: timestampFromDate(c.createdAt),
    deliveredAt: c.deliveredAt ? timestampFromDate(c.deliveredAt) : undefined,
    completedAt: c.completedAt ? timestampFromDate(c.completedAt) : undefined,
    scan: c.result ? scanSummaryToPb(c.result) : undefined,
    state: c.state,
    groupId: c.groupId,
    expiresAt: timestampFromDate(c.expiresAt),
    failure: c.failure ?? '',
    createdBy: c.createdBy,
  };
}

function commandState(text: string, what: string): CommandState {
  if (!(COMMAND_STATES as readonly string[]).includes(text)) throw new ControllerError('invalid_argument', `${what}: one of ${COMMAND_STATES.join(', ')}, not "${text}"`);
  return text as CommandState;
}

/** `vigilctl rescan` and `vigilctl commands`: fleet operations sent to agents, and their state per agent. */
export function commandMethods(deps: CommandsDeps): Pick<ServiceImpl<typeof AdminService>, 'rescan' | 'getCommands' | 'listCommands' | 'getCommandGroup'> {
  return {
    async rescan(req, ctx) {
      const op = requireOperator(ctx, 'admin');
      if (Boolean(req.agentId) === req.all) throw new ControllerError('invalid_argument', 'give exactly one of agent_id and all');
      if (req.expiresInSeconds > MAX_EXPIRY_S) throw new ControllerError('invalid_argument', `expires_in_seconds: at most ${MAX_EXPIRY_S} (30 days)`);
      if (!req.all) {
        const agent = await deps.agents.get(req.agentId);
        if (!agent) throw new ControllerError('not_found', `no agent ${req.agentId}`);
        if (agent.revokedAt) throw new ControllerError('failed_precondition', `agent ${req.agentId} is revoked: a command would never reach it`);
      }
      const sent = await deps.dispatch.send({
        kind: 'rescan',
        fullHash: req.fullHash,
        targets: req.all ? 'every-agent' : { agentIds: [req.agentId] },
        createdBy: op.spiffeId,
        expiresInMs: req.expiresInSeconds ? Number(req.expiresInSeconds) * 1000 : undefined,
      });
      await deps.audit.record({
        actor: op.spiffeId,
        action: 'rescan',
        target: req.all ? '*' : req.agentId,
        details: { fullHash: req.fullHash, agents: sent.targets.length, group: sent.groupId },
      });
      return {
        groupId: sent.groupId,
        expiresAt: timestampFromDate(sent.expiresAt),
        targets: sent.targets.map((t) => ({ ...t, state: t.delivered ? 'delivered' : 'pending' })),
      };
    },

    async getCommands(req, ctx) {
      requireOperator(ctx, 'viewer');
      if (req.ids.length > MAX_IDS) throw new ControllerError('invalid_argument', `at most ${MAX_IDS} ids`);
      return { commands: (await deps.commands.get(req.ids)).map(commandStatusToPb) };
    },

    async listCommands(req, ctx) {
      requireOperator(ctx, 'viewer');
      if (req.limit > MAX_IDS) throw new ControllerError('invalid_argument', `limit: at most ${MAX_IDS}`);
      const { commands, more } = await deps.commands.list({
        state: req.state ? commandState(req.state, 'state') : undefined,
        agentId: req.agentId || undefined,
        groupId: req.groupId || undefined,
        limit: req.limit || DEFAULT_LIST,
      });
      return { commands: commands.map(commandStatusToPb), more };
    },

    async getCommandGroup(req, ctx) {
      requireOperator(ctx, 'viewer');
      if (!req.id) throw new ControllerError('invalid_argument', 'give a command or group id');
      const states = req.states.map((s) => commandState(s, 'states'));
      const group = await deps.commands.group(req.id);
      if (!group) throw new ControllerError('not_found', `no command or command group ${req.id}`);
      const commands = req.withCommands ? await deps.commands.groupCommands(group.groupId, states) : [];
      return {
        groupId: group.groupId,
        kind: group.kind,
        createdAt: timestampFromDate(group.createdAt),
        createdBy: group.createdBy,
        expiresAt: timestampFromDate(group.expiresAt),
        pending: BigInt(group.counts.pending),
        delivered: BigInt(group.counts.delivered),
        done: BigInt(group.counts.done),
        failed: BigInt(group.counts.failed),
        expired: BigInt(group.counts.expired),
        commands: commands.map(commandStatusToPb),
      };
    },
  };
}
