import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { ControllerError } from '../../errors.js';
import type { CliContext } from '../cli-context.js';
import { table, ts } from '../output.js';
import { parseWhen } from '../time-arg.js';

export function registerAudit(ctx: CliContext): void {
  ctx.program
    .command('audit')
    .description('who changed what, when: tokens, policies, revocations, rescans, operators (oldest first)')
    .option('--since <when>', 'only entries since WHEN: a duration back from now (30s, 15m, 1h, 7d) or an ISO-8601 time')
    .option('--limit <n>', 'the newest N entries', '1000')
    .action((o: { since?: string; limit: string }) =>
      ctx.withClient(async (c) => {
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new ControllerError('invalid_argument', '--limit: a whole number of at least 1');
        const res = await c.listAudit({ limit, ...(o.since ? { since: timestampFromDate(parseWhen(o.since, '--since')) } : {}) });
        const rows = res.entries.map((e) => ({ at: ts(e.at), actor: e.actor, action: e.action, target: e.target, details: JSON.parse(e.detailsJson || '{}') as unknown }));
        if (res.more) ctx.note(`the newest ${rows.length.toLocaleString('en-US')} entries shown; older ones match too: --limit N or --since`);
        if (ctx.json()) return ctx.printJson(rows);
        ctx.print(table(['WHEN', 'WHO', 'WHAT', 'TARGET', 'DETAILS'], rows.map((r) => [r.at ?? '-', r.actor, r.action, r.target, JSON.stringify(r.details)])));
      }),
    );
}
