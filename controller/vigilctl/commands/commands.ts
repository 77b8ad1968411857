import { ControllerError } from '../../errors.js';
import { resolveAgentId } from '../agent-ref.js';
import type { CliContext } from '../cli-context.js';
import { commandJson, commandOutcome, countsJson, countsText } from '../command-output.js';
import { table, ts } from '../output.js';

const STATES = ['pending', 'delivered', 'done', 'failed', 'expired'];

function checkState(state: string | undefined): string {
  if (state === undefined) return '';
  if (!STATES.includes(state)) throw new ControllerError('invalid_argument', `--state: one of ${STATES.join(', ')}, not "${state}"`);
  return state;
}

export function registerCommands(ctx: CliContext): void {
  const commands = ctx.program.command('commands').description('commands sent to agents (rescans): their state per agent, and results');

  commands
    .command('ls')
    .description('commands per agent, newest first: pending, delivered, done, failed or expired')
    .option('--state <state>', 'only commands in this state (pending, delivered, done, failed, expired)')
    .option('--agent <agent>', "only this agent's commands (its id, or a unique prefix of one)")
    .option('--group <id>', 'only the commands of this group (one fleet operation)')
    .option('--limit <n>', 'the newest N commands', '50')
    .action((o: { state?: string; agent?: string; group?: string; limit: string }) =>
      ctx.withClient(async (c) => {
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new ControllerError('invalid_argument', '--limit: a whole number from 1 to 10000');
        const state = checkState(o.state);
        const agentId = o.agent ? await resolveAgentId(c, o.agent) : '';
        const res = await c.listCommands({ state, agentId, groupId: o.group ?? '', limit });
        if (res.more) ctx.note(`the newest ${res.commands.length.toLocaleString('en-US')} commands shown; older ones match too: --limit N, --state, --agent or --group`);
        if (ctx.json()) return ctx.printJson(res.commands.map(commandJson));
        const wide = ctx.format() === 'wide';
        ctx.print(
          table(
            ['COMMAND', 'GROUP', 'AGENT', 'KIND', 'STATE', 'CREATED', 'RESULT'],
            res.commands.map((x) => [x.id, wide ? x.groupId : x.groupId.slice(0, 8), wide ? x.agentId : x.agentId.slice(0, 8), x.kind, x.state, ts(x.createdAt) ?? '-', commandOutcome(x)]),
          ),
        );
      }),
    );

  commands
    .command('show')
    .description("one fleet operation (a group id, or the id of one of its commands): its state counts and each agent's command with its result")
    .argument('<id>', 'a group id or a command id')
    .option('--state <state>', 'list only the agents whose command is in this state')
    .action((id: string, o: { state?: string }) =>
      ctx.withClient(async (c) => {
        const state = checkState(o.state);
        const g = await c.getCommandGroup({ id, withCommands: true, states: state ? [state] : [] });
        if (ctx.json()) {
          return ctx.printJson({
            groupId: g.groupId,
            kind: g.kind,
            createdAt: ts(g.createdAt),
            createdBy: g.createdBy,
            expiresAt: ts(g.expiresAt),
            counts: countsJson(g),
            commands: g.commands.map(commandJson),
          });
        }
        ctx.print(
          [
            `group    ${g.groupId}`,
            `kind     ${g.kind}`,
            `created  ${ts(g.createdAt) ?? '-'} by ${g.createdBy}`,
            `expires  ${ts(g.expiresAt) ?? '-'}`,
            `state    ${countsText(g)}`,
            table(['  AGENT', 'COMMAND', 'STATE', 'RESULT'], g.commands.map((x) => [`  ${x.agentId}`, x.id, x.state, commandOutcome(x)])),
          ].join('\n'),
        );
      }),
    );
}
