import type { CommandStatus, GetCommandGroupResponse } from '../../../proto/gen/vigil/v1/admin_pb.js';
import { parseDuration } from '../../config.js';
import { ControllerError } from '../../errors.js';
import type { AdminClient } from '../admin-client.js';
import { resolveAgentId } from '../agent-ref.js';
import type { CliContext } from '../cli-context.js';
import { commandOutcome, countsText } from '../command-output.js';
import { ts } from '../output.js';
import { createWaitProgress } from '../wait-progress.js';

/** Up to this many targets, one line per agent; above, a summary and the agents that did not finish well. */
const LINE_PER_AGENT = 20;
const POLL_MS = 250;

const finished = (g: GetCommandGroupResponse) => g.pending + g.delivered === 0n;

/** Polls the group's counts (one small answer, whatever the fleet's size) until every target finished or the time is up. */
async function waitForGroup(c: AdminClient, groupId: string, timeoutMs: number, onCounts: (g: GetCommandGroupResponse) => void): Promise<GetCommandGroupResponse> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const g = await c.getCommandGroup({ id: groupId });
    onCounts(g);
    if (finished(g) || Date.now() >= deadline) return g;
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
  }
}

export function registerRescan(ctx: CliContext): void {
  ctx.program
    .command('rescan')
    .description(
      'make agents re-scan now and report what they found; agents not connected get it when they connect (until it expires). ' +
        'With --wait, exits 1 when any target failed, expired or did not report in time',
    )
    .option('--agent <agent>', 'this agent (its id, or a unique prefix of one)')
    .option('--all', 'every agent (not revoked, certificate not expired), connected or not')
    .option('--full-hash', 'hash every file again instead of trusting unchanged stat data')
    .option('--wait [duration]', "wait for the agents' scan reports (up to DURATION, default 5m)")
    .option('--timeout <duration>', 'with --wait: how long to wait (as --wait DURATION)')
    .option('--expire-after <duration>', "how long the command waits for an agent that is not connected, and for its report (default: the controller's, 24h)")
    .action((o: { agent?: string; all?: boolean; fullHash?: boolean; wait?: string | boolean; timeout?: string; expireAfter?: string }) =>
      ctx.withClient(async (c) => {
        if (Boolean(o.agent) === Boolean(o.all)) throw new ControllerError('invalid_argument', 'give exactly one of --agent ID and --all');
        if (o.timeout && !o.wait) throw new ControllerError('invalid_argument', '--timeout goes with --wait');
        const timeoutMs = o.timeout ? parseDuration(o.timeout, '--timeout') : typeof o.wait === 'string' ? parseDuration(o.wait, '--wait') : 300_000;
        const expiresInSeconds = o.expireAfter ? BigInt(parseDuration(o.expireAfter, '--expire-after') / 1000) : 0n;
        const agentId = o.agent ? await resolveAgentId(c, o.agent) : '';
        const res = await c.rescan({ agentId, all: Boolean(o.all), fullHash: Boolean(o.fullHash), expiresInSeconds });
        const n = res.targets.length;
        if (n) ctx.note(`group ${res.groupId} (${n} agent${n === 1 ? '' : 's'}): vigilctl commands show ${res.groupId}`);

        let group: GetCommandGroupResponse | null = null;
        let byCommand = new Map<string, CommandStatus>();
        if (o.wait && n) {
          const progress = await createWaitProgress({ total: n, err: process.stderr });
          try {
            group = await waitForGroup(c, res.groupId, timeoutMs, (g) => progress.update(Number(g.done + g.failed + g.expired), countsText(g)));
          } finally {
            progress.stop();
          }
          // Every agent's result for JSON and for a few agents; else only those that did not finish well.
          const few = ctx.json() || n <= LINE_PER_AGENT;
          const detail = await c.getCommandGroup({ id: res.groupId, withCommands: true, states: few ? [] : ['pending', 'delivered', 'failed', 'expired'] });
          byCommand = new Map(detail.commands.map((x) => [x.id, x]));
        }

        const rows = res.targets.map((t) => {
          const s = byCommand.get(t.commandId);
          return {
            agentId: t.agentId,
            commandId: t.commandId,
            groupId: res.groupId,
            delivered: t.delivered,
            state: s?.state ?? t.state,
            ...(o.wait
              ? {
                  completed: Boolean(s?.completedAt),
                  filesScanned: s?.scan ? Number(s.scan.filesScanned) : null,
                  changes: s?.scan ? Number(s.scan.changes) : null,
                  errors: s?.scan ? Number(s.scan.errors) : null,
                  failure: s?.failure || null,
                }
              : {}),
          };
        });
        if (ctx.json()) ctx.printJson(rows);
        else if (!n) ctx.print('no agents to rescan');
        else if (!o.wait) {
          const queued = rows.filter((t) => !t.delivered);
          if (n <= LINE_PER_AGENT) {
            for (const t of rows) ctx.print(t.delivered ? `${t.agentId}: rescan sent (command ${t.commandId})` : `${t.agentId}: not connected here; queued until ${ts(res.expiresAt) ?? '-'} (command ${t.commandId})`);
          } else {
            ctx.print(`rescan sent to ${n} agents: ${n - queued.length} delivered here, ${queued.length} queued for agents on other replicas or not connected (until ${ts(res.expiresAt) ?? '-'})`);
          }
        } else {
          const stillOpen = (s: CommandStatus) => (s.state === 'pending' || s.state === 'delivered' ? `timed out: ${commandOutcome(s)}` : commandOutcome(s));
          if (n <= LINE_PER_AGENT) {
            for (const t of res.targets) {
              const s = byCommand.get(t.commandId);
              ctx.print(`${t.agentId}: ${s ? stillOpen(s) : 'no state'}`);
            }
          } else {
            ctx.print(`rescan of ${group ? countsText(group) : `${n} agents`}`);
            const bad = [...byCommand.values()];
            for (const s of bad.slice(0, LINE_PER_AGENT)) ctx.print(`${s.agentId}: ${stillOpen(s)}`);
            if (bad.length > LINE_PER_AGENT) ctx.note(`${bad.length - LINE_PER_AGENT} more did not finish well: vigilctl commands show ${res.groupId} --state failed (or expired, pending, delivered)`);
          }
        }
        // With --wait: any target that failed, expired or did not report in time.
        if (o.wait && group && !(group.done === BigInt(n))) process.exitCode = 1;
      }),
    );
}
