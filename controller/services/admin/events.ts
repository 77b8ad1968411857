import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import { CHANGE_KINDS, type ChangeKind } from '../../../core/model.js';
import { deltaToPb } from '../../../proto/convert.js';
import type { AdminService } from '../../../proto/gen/vigil/v1/admin_pb.js';
import { ControllerError } from '../../errors.js';
import type { EventStore } from '../../store/index.js';
import { requireOperator } from '../peer-identity.js';

const EVENTS_DEFAULT_LIMIT = 1000;
const EVENTS_MAX_LIMIT = 100_000;

/** `vigilctl events`: the change history, filtered, newest page first. */
export function eventMethods(deps: { readonly events: EventStore }): Pick<ServiceImpl<typeof AdminService>, 'listEvents'> {
  return {
    async listEvents(req, ctx) {
      requireOperator(ctx, 'viewer');
      const limit = Math.min(req.limit || EVENTS_DEFAULT_LIMIT, EVENTS_MAX_LIMIT);
      const kinds = req.kinds.map((k) => {
        if (!(CHANGE_KINDS as readonly string[]).includes(k)) throw new ControllerError('invalid_argument', `kind "${k}": one of ${CHANGE_KINDS.join(', ')}`);
        return k as ChangeKind;
      });
      const res = await deps.events.list({
        ...(req.agentId ? { agentId: req.agentId } : {}),
        ...(req.pathGlob ? { pathGlob: req.pathGlob } : {}),
        ...(req.since ? { since: timestampDate(req.since) } : {}),
        ...(req.until ? { until: timestampDate(req.until) } : {}),
        ...(kinds.length ? { kinds } : {}),
        ...(req.before?.detectedAt ? { before: { detectedAt: timestampDate(req.before.detectedAt), agentId: req.before.agentId, seq: Number(req.before.seq) } } : {}),
        limit,
      });
      return {
        events: res.events.map((e) => ({ agentId: e.agentId, delta: deltaToPb(e.delta), committedAt: timestampFromDate(e.committedAt) })),
        more: res.more,
      };
    },
  };
}
