import { resolveAgentId } from '../agent-ref.js';
import type { CliContext } from '../cli-context.js';
import { agentDetailJson, agentDetailText, table, ts } from '../output.js';

export function registerAgents(ctx: CliContext): void {
  const agents = ctx.program.command('agents').description('enrolled agents');
  agents
    .command('ls')
    .description('list enrolled agents (-o wide: sequence, refused deltas, resync flag, gap records)')
    .action(() =>
      ctx.withClient(async (c) => {
        const res = await c.listAgents({});
        const rows = res.agents.map((a) => ({
          id: a.id,
          hostname: a.hostname,
          connected: a.connected,
          replica: a.replica || null,
          enrolledAt: ts(a.enrolledAt),
          lastSeenAt: ts(a.lastSeenAt),
          lastSeq: Number(a.lastSeq),
          refreshedCount: Number(a.refreshedCount),
          refusedCount: Number(a.refusedCount),
          deliveryBlocked: a.deliveryBlocked ? { seq: Number(a.deliveryBlocked.seq), reason: a.deliveryBlocked.reason } : null,
          resyncNeeded: a.delivery?.resyncNeeded ?? false,
          gapsTotal: Number(a.delivery?.gapsTotal ?? 0),
          policyVersion: Number(a.policyVersion),
          status: a.status,
          labels: a.labels,
          certNotAfter: ts(a.certNotAfter),
          revokedAt: ts(a.revokedAt),
        }));
        if (ctx.json()) return ctx.printJson(rows);
        const wide = ctx.format() === 'wide';
        const labels = (l: Record<string, string>) => Object.entries(l).map(([k, v]) => `${k}=${v}`).join(',') || '-';
        const status = (r: (typeof rows)[number]) => (r.status === 'certificate_expired' ? 'certificate expired: enrol again' : r.deliveryBlocked ? `${r.status}, delivery blocked` : r.status);
        ctx.print(
          table(
            ['ID', 'HOSTNAME', 'STATUS', 'LAST SEEN', 'LAST SEQ', 'POLICY', 'CERT EXPIRES', 'LABELS', ...(wide ? ['REPLICA', 'REFUSED', 'RESYNC', 'GAPS'] : [])],
            rows.map((r) => [
              r.id,
              r.hostname,
              status(r),
              r.lastSeenAt ?? '-',
              String(r.lastSeq),
              `v${r.policyVersion}`,
              r.certNotAfter ?? '-',
              labels(r.labels),
              ...(wide ? [r.replica ?? '-', String(r.refusedCount), r.resyncNeeded ? 'needed' : '-', String(r.gapsTotal)] : []),
            ]),
          ),
        );
      }),
    );

  agents
    .command('show')
    .description('one agent in detail: sequence accounting, refused deltas, queue, resync flag, reconciliation, gap records, scheduled-only directories')
    .argument('<agent>', 'agent id, or a unique prefix of one')
    .action((ref: string) =>
      ctx.withClient(async (c) => {
        const res = await c.getAgent({ agentId: await resolveAgentId(c, ref) });
        const j = agentDetailJson(res.agent!, Number(res.eventsStored), res.refused);
        if (ctx.json()) ctx.printJson(j);
        else ctx.print(agentDetailText(j));
      }),
    );

  agents
    .command('revoke')
    .description('revoke an agent: its live stream is cut on every controller, new connections and renewals are refused')
    .argument('<agent>', 'agent id, or a unique prefix of one')
    .option('--reason <text>', 'recorded with the revocation and in the audit log', 'revoked by an operator')
    .action((ref: string, o: { reason: string }) =>
      ctx.withClient(async (c) => {
        const id = await resolveAgentId(c, ref);
        await c.revokeAgent({ agentId: id, reason: o.reason });
        if (ctx.json()) ctx.printJson({ revoked: id });
        else ctx.print(`agent ${id} revoked`);
      }),
    );
}
