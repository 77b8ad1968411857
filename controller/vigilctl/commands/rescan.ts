import type { CommandStatus } from '../../../proto/gen/vigil/v1/admin_pb.js';
import { parseDuration } from '../../config.js';
import { ControllerError } from '../../errors.js';
import type { AdminClient } from '../admin-client.js';
import { resolveAgentId } from '../agent-ref.js';
import type { CliContext } from '../cli-context.js';

async function waitForCommands(c: AdminClient, ids: string[], timeoutMs: number): Promise<Map<string, CommandStatus>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await c.getCommands({ ids });
    const done = new Map(res.commands.filter((x) => x.completedAt).map((x) => [x.id, x]));
    if (done.size === ids.length || Date.now() >= deadline) return done;
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function registerRescan(ctx: CliContext): void {
  ctx.program
    .command('rescan')
    .description('make agents re-scan now and report what they found; exits 1 when an agent asked for could not be reached (or, with --wait, did not report)')
    .option('--agent <agent>', 'this agent (its id, or a unique prefix of one)')
    .option('--all', 'every connected agent')
    .option('--full-hash', 'hash every file again instead of trusting unchanged stat data')
    .option('--wait [duration]', "wait for the agents' scan reports (default up to 5m)")
    .action((o: { agent?: string; all?: boolean; fullHash?: boolean; wait?: string | boolean }) =>
      ctx.withClient(async (c) => {
        if (Boolean(o.agent) === Boolean(o.all)) throw new ControllerError('invalid_argument', 'give exactly one of --agent ID and --all');
        const agentId = o.agent ? await resolveAgentId(c, o.agent) : '';
        const res = await c.rescan({ agentId, all: Boolean(o.all), fullHash: Boolean(o.fullHash) });
        const sent = res.targets.filter((t) => t.delivered);
        let reports = new Map<string, CommandStatus>();
        if (o.wait && sent.length) {
          const timeoutMs = typeof o.wait === 'string' ? parseDuration(o.wait, '--wait') : 300_000;
          reports = await waitForCommands(c, sent.map((t) => t.commandId), timeoutMs);
        }
        const rows = res.targets.map((t) => {
          const r = reports.get(t.commandId)?.scan;
          return {
            agentId: t.agentId,
            commandId: t.commandId,
            delivered: t.delivered,
            ...(o.wait ? { completed: Boolean(r), filesScanned: r ? Number(r.filesScanned) : null, changes: r ? Number(r.changes) : null, errors: r ? Number(r.errors) : null } : {}),
          };
        });
        if (ctx.json()) ctx.printJson(rows);
        else if (!rows.length) ctx.print('no connected agents');
        else
          for (const t of rows) {
            if (!t.delivered) ctx.print(`${t.agentId}: not connected; not sent`);
            else if (!o.wait) ctx.print(`${t.agentId}: rescan sent (command ${t.commandId})`);
            else if (!t.completed) ctx.print(`${t.agentId}: no report yet (command ${t.commandId})`);
            else ctx.print(`${t.agentId}: scanned ${t.filesScanned} paths, ${t.changes} change(s), ${t.errors} error(s)`);
          }
        // One agent asked for by name that was not reached, or a report waited for that did not come.
        if ((o.agent && rows.some((t) => !t.delivered)) || (o.wait && rows.some((t) => t.delivered && !t.completed))) process.exitCode = 1;
      }),
    );
}
