import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { Event } from '../../../proto/gen/vigil/v1/admin_pb.js';
import { CHANGE_KINDS } from '../../../core/model.js';
import { ControllerError } from '../../errors.js';
import { resolveAgentId } from '../agent-ref.js';
import { parseWhen } from '../time-arg.js';
import type { CliContext } from '../cli-context.js';
import { changedAttributes } from '../../../core/xattr-encoding.js';
import { eventJson, modeString, table } from '../output.js';

/** Events a page asks for with --all (the server's most). */
const ALL_PAGE = 100_000;

export function registerEvents(ctx: CliContext): void {
  ctx.program
    .command('events')
    .description('file change history, oldest first (the newest --limit; says so on stderr when more match)')
    .option('--agent <agent>', 'only this agent (its id, or a unique prefix of one)')
    .option('--path <glob>', 'only paths matching this glob (picomatch)')
    .option('--kind <kinds>', `only these kinds, comma-separated (${CHANGE_KINDS.filter((k) => k !== 'refreshed').join(', ')})`)
    .option('--since <when>', 'only changes detected since WHEN: a duration back from now (30s, 15m, 1h, 7d) or an ISO-8601 time')
    .option('--until <when>', 'only changes detected before WHEN (same forms as --since)')
    .option('--limit <n>', 'at most N events (the newest N)', '1000')
    .option('--all', 'every matching event, however many (fetched in pages)')
    .action((o: { agent?: string; path?: string; kind?: string; since?: string; until?: string; limit: string; all?: boolean }) =>
      ctx.withClient(async (c) => {
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new ControllerError('invalid_argument', '--limit: a whole number of at least 1');
        const kinds = o.kind ? o.kind.split(',').map((k) => k.trim()).filter(Boolean) : [];
        const query = {
          agentId: o.agent ? await resolveAgentId(c, o.agent) : '',
          pathGlob: o.path ?? '',
          kinds,
          ...(o.since ? { since: timestampFromDate(parseWhen(o.since, '--since')) } : {}),
          ...(o.until ? { until: timestampFromDate(parseWhen(o.until, '--until')) } : {}),
        };
        let found: Event[] = [];
        let more = false;
        if (o.all) {
          // Newest page first; each next page is older than the oldest event so far.
          for (let before: Event | undefined; ; ) {
            const cursor = before ? { detectedAt: before.delta!.detectedAt!, agentId: before.agentId, seq: before.delta!.seq } : undefined;
            const res = await c.listEvents({ ...query, limit: ALL_PAGE, ...(cursor ? { before: cursor } : {}) });
            found = [...res.events, ...found];
            if (!res.more || !res.events.length) break;
            before = res.events[0];
          }
        } else {
          const res = await c.listEvents({ ...query, limit });
          found = res.events;
          more = res.more;
        }
        // Which named attributes (acl, selinux) changed: against the path's previous event shown.
        const last = new Map<string, Record<string, string> | null>();
        const events = found.map(eventJson).map((e) => {
          const key = `${e.agentId}\0${e.pathBytes}`;
          const changed = changedAttributes(last.get(key) ?? null, e.attributes);
          if (e.attributes) last.set(key, e.attributes);
          return { ...e, attributesChanged: changed };
        });
        if (more) ctx.note(`the newest ${events.length.toLocaleString('en-US')} events shown; older ones match too: --limit N or --all`);
        if (ctx.json()) return ctx.printJson(events);
        const wide = ctx.format() === 'wide';
        ctx.print(
          table(
            ['DETECTED', 'AGENT', 'SEQ', 'KIND', 'SOURCE', 'MODE', 'SHA256', 'PATH'].filter((h) => wide || h !== 'SOURCE'),
            events.map((e) =>
              [e.detectedAt, wide ? e.agentId : e.agentId.slice(0, 8), String(e.seq), e.attributesChanged.length ? `${e.kind} (${e.attributesChanged.join(', ')})` : e.kind, e.source, modeString(e.mode), e.error ? `!${e.error}` : wide ? (e.sha256 ?? '-') : (e.sha256?.slice(0, 12) ?? '-'), e.path].filter(
                (_v, i) => wide || i !== 4,
              ),
            ),
          ),
        );
      }),
    );
}
