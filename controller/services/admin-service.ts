import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { deltaToPb, fileStateToPb, policyFromPb, policyToPb } from '../../proto/convert.js';
import { CHANGE_KINDS, type ChangeKind } from '../../core/model.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { AdminService, type AgentSchema } from '../../proto/gen/vigil/v1/admin_pb.js';
import { deliveryStatusToPb } from './delivery-status.js';
import type { AgentHub } from '../agent-hub.js';
import { ControllerError } from '../errors.js';
import type { CurrentPolicy } from '../policy/current-policy.js';
import { policyToDocument, validatePolicy } from '../../core/policy-schema.js';
import type { AgentRecord, AgentStore, AuditStore, CertificateStore, Clock, CommandStore, EventStore, PolicyStore, StateStore, TokenStore } from '../store/index.js';
import type { Fanout } from '../fanout.js';
import { pushPolicy } from '../policy/push-policy.js';
import { validateLabels } from '../../core/policy-schema.js';
import { adminSpiffeId, formatJoinString, generateToken, isValidName, spkiFingerprint, verifyCsr, type CertificateAuthority } from '../../pki/index.js';
import type { DownMessage } from './connect-service.js';
import { requireOperator } from './peer-identity.js';

export interface AdminDeps {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly ca: CertificateAuthority;
  readonly certificates: CertificateStore;
  readonly fanout: Fanout;
  /** Lifetime of operator certificates issued by `vigilctl admins add`. */
  readonly operatorCertLifetimeMs: number;
  readonly hub: AgentHub<DownMessage>;
  readonly policy: CurrentPolicy;
  readonly agents: AgentStore;
  readonly events: EventStore;
  readonly files: StateStore;
  readonly tokens: TokenStore;
  readonly policies: PolicyStore;
  readonly commands: CommandStore;
  readonly audit: AuditStore;
  /** CA pins for join strings (several during a CA rotation). */
  readonly pins: readonly string[];
  /** Where agents reach the enrolment listener; known once it listens. */
  readonly enrolAddress: () => string;
}

export const TOKEN_DEFAULT_TTL_S = 3600;
export const TOKEN_MAX_TTL_S = 30 * 86400;
export const TOKEN_MAX_USES = 100_000;
const EVENTS_DEFAULT_LIMIT = 1000;
const EVENTS_MAX_LIMIT = 100_000;
const FILES_DEFAULT_LIMIT = 1000;
const FILES_MAX_LIMIT = 10_000;
/** Refused deltas `agents show` lists (refused_count says how many in all). */
const RECENT_REFUSALS = 10;

function agentToPb(a: AgentRecord, connected: boolean, now: number): MessageInitShape<typeof AgentSchema> {
  return {
    id: a.id,
    hostname: a.hostname,
    connected,
    enrolledAt: timestampFromDate(a.enrolledAt),
    lastSeenAt: a.lastSeenAt ? timestampFromDate(a.lastSeenAt) : undefined,
    lastSeq: BigInt(a.lastSeq),
    refreshedCount: BigInt(a.refreshedCount),
    refusedCount: BigInt(a.refusedCount),
    ...(a.deliveryBlocked ? { deliveryBlocked: { seq: BigInt(a.deliveryBlocked.seq), reason: a.deliveryBlocked.reason, at: timestampFromDate(new Date(a.deliveryBlocked.at)) } } : {}),
    policyVersion: BigInt(a.policyVersion),
    labels: a.labels,
    certNotAfter: a.certNotAfter ? timestampFromDate(a.certNotAfter) : undefined,
    revokedAt: a.revokedAt ? timestampFromDate(a.revokedAt) : undefined,
    status: a.revokedAt ? 'revoked' : a.certNotAfter && a.certNotAfter.getTime() <= now ? 'certificate_expired' : connected ? 'connected' : 'disconnected',
    ...(a.deliveryStatus ? { delivery: deliveryStatusToPb(a.deliveryStatus), deliveryReportedAt: timestampFromDate(new Date(a.deliveryStatus.reportedAt)) } : {}),
  };
}

/** AdminService for vigilctl. Viewers read; changes need the admin role and are audited. */
export function createAdminService(deps: AdminDeps): ServiceImpl<typeof AdminService> {
  const log = deps.logger.child({ component: 'admin' });
  return {
    async listAgents(_req, ctx) {
      requireOperator(ctx, 'viewer');
      const connected = new Set(deps.hub.ids());
      const agents = await deps.agents.list();
      const now = deps.clock().getTime();
      return { agents: agents.map((a) => agentToPb(a, connected.has(a.id), now)) };
    },

    async getAgent(req, ctx) {
      requireOperator(ctx, 'viewer');
      const a = await deps.agents.get(req.agentId);
      if (!a) throw new ControllerError('not_found', `no agent ${req.agentId}`);
      const connected = deps.hub.ids().includes(a.id);
      const [eventsStored, refusals] = await Promise.all([deps.events.countFor(a.id), deps.events.refusals(a.id, RECENT_REFUSALS)]);
      return {
        agent: agentToPb(a, connected, deps.clock().getTime()),
        eventsStored: BigInt(eventsStored),
        refused: refusals.recent.map((r) => ({ seq: BigInt(r.seq), field: r.field, reason: r.reason, path: r.path ?? new Uint8Array(0), kind: r.kind ?? '', refusedAt: timestampFromDate(r.refusedAt) })),
      };
    },

    async listFiles(req, ctx) {
      requireOperator(ctx, 'viewer');
      const limit = Math.min(req.limit || FILES_DEFAULT_LIMIT, FILES_MAX_LIMIT);
      const page = await deps.files.page(req.agentId, { ...(req.after.length ? { after: Buffer.from(req.after) } : {}), limit });
      return { files: page.map((f) => ({ path: f.path, state: fileStateToPb(f.state), updatedSeq: BigInt(f.updatedSeq) })) };
    },

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

    async createToken(req, ctx) {
      const op = requireOperator(ctx, 'admin');
      const ttl = req.ttlSeconds || TOKEN_DEFAULT_TTL_S;
      const uses = req.uses || 1;
      if (ttl > TOKEN_MAX_TTL_S) throw new ControllerError('invalid_argument', `ttl must be at most ${TOKEN_MAX_TTL_S} seconds`);
      if (uses > TOKEN_MAX_USES) throw new ControllerError('invalid_argument', `uses must be at most ${TOKEN_MAX_USES}`);
      const labels = validateLabels({ ...req.labels });
      const token = generateToken();
      const rec = await deps.tokens.create({ token, ttlMs: ttl * 1000, uses, createdBy: op.spiffeId, labels });
      await deps.audit.record({ actor: op.spiffeId, action: 'tokens.create', target: token.id, details: { ttlSeconds: ttl, uses, labels } });
      log.info({ actor: op.spiffeId, tokenId: token.id, ttlSeconds: ttl, uses }, 'token created');
      return {
        joinString: formatJoinString({ address: deps.enrolAddress(), token, pins: deps.pins }),
        tokenId: token.id,
        expiresAt: timestampFromDate(rec.expiresAt),
      };
    },

    async listTokens(_req, ctx) {
      requireOperator(ctx, 'viewer');
      const tokens = await deps.tokens.list();
      return {
        tokens: tokens.map((t) => ({
          id: t.id,
          createdAt: timestampFromDate(t.createdAt),
          createdBy: t.createdBy,
          expiresAt: timestampFromDate(t.expiresAt),
          usesAllowed: t.usesAllowed,
          uses: t.uses,
          revokedAt: t.revokedAt ? timestampFromDate(t.revokedAt) : undefined,
          labels: t.labels,
        })),
      };
    },

    async revokeToken(req, ctx) {
      const op = requireOperator(ctx, 'admin');
      if (!(await deps.tokens.revoke(req.id))) throw new ControllerError('not_found', `no token ${req.id} that is not revoked already`);
      await deps.audit.record({ actor: op.spiffeId, action: 'tokens.revoke', target: req.id, details: {} });
      log.info({ actor: op.spiffeId, tokenId: req.id }, 'token revoked');
      return {};
    },

    async applyPolicy(req, ctx) {
      const op = requireOperator(ctx, 'admin');
      if (!req.policy) throw new ControllerError('invalid_argument', 'policy: missing');
      // The wire form is checked by the same schema as the YAML file (errors name its fields).
      const checked = validatePolicy(policyToDocument(policyFromPb(req.policy)));
      const policy = await deps.policies.apply(checked, op.spiffeId);
      deps.policy.set(policy);
      const pushedTo = pushPolicy(deps.hub, deps.policy);
      // The other replicas push it to the agents connected to them.
      await deps.fanout.publish({ type: 'policy', version: policy.version });
      await deps.audit.record({ actor: op.spiffeId, action: 'policies.apply', target: `v${policy.version}`, details: { rules: checked.rules.length } });
      log.info({ actor: op.spiffeId, version: policy.version, pushedTo }, 'policy applied');
      return { version: BigInt(policy.version), pushedTo };
    },

    async getPolicy(_req, ctx) {
      requireOperator(ctx, 'viewer');
      const policy = deps.policy.get();
      return policy ? { policy: policyToPb(policy) } : {};
    },

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
        const session = deps.hub.get(agentId);
        const delivered = session?.send({ msg: { case: 'command', value: { id: commandId, kind: { case: 'rescan', value: { fullHash: req.fullHash } } } } }) ?? false;
        if (delivered) await deps.commands.markDelivered(commandId);
        targets.push({ agentId, commandId, delivered });
      }
      await deps.audit.record({ actor: op.spiffeId, action: 'rescan', target: req.all ? '*' : req.agentId, details: { fullHash: req.fullHash, agents: ids.length } });
      return { targets };
    },

    async getCommands(req, ctx) {
      requireOperator(ctx, 'viewer');
      if (req.ids.length > 10_000) throw new ControllerError('invalid_argument', 'at most 10000 ids');
      const commands = await deps.commands.get(req.ids);
      return {
        commands: commands.map((c) => {
          const r = c.result as { filesScanned?: number; changes?: number; errors?: number; startedAt?: string; finishedAt?: string } | null;
          return {
            id: c.id,
            agentId: c.agentId,
            kind: c.kind,
            createdAt: timestampFromDate(c.createdAt),
            deliveredAt: c.deliveredAt ? timestampFromDate(c.deliveredAt) : undefined,
            completedAt: c.completedAt ? timestampFromDate(c.completedAt) : undefined,
            scan: r
              ? {
                  filesScanned: BigInt(r.filesScanned ?? 0),
                  changes: BigInt(r.changes ?? 0),
                  errors: BigInt(r.errors ?? 0),
                  startedAt: r.startedAt ? timestampFromDate(new Date(r.startedAt)) : undefined,
                  finishedAt: r.finishedAt ? timestampFromDate(new Date(r.finishedAt)) : undefined,
                }
              : undefined,
          };
        }),
      };
    },

    async revokeAgent(req, ctx) {
      const op = requireOperator(ctx, 'admin');
      const reason = req.reason.slice(0, 500) || 'revoked by an operator';
      if (!(await deps.agents.revoke(req.agentId, reason))) {
        const known = await deps.agents.get(req.agentId);
        throw known
          ? new ControllerError('failed_precondition', `agent ${req.agentId} is revoked already`)
          : new ControllerError('not_found', `no agent ${req.agentId}`);
      }
      await deps.audit.record({ actor: op.spiffeId, action: 'agents.revoke', target: req.agentId, details: { reason } });
      // Cut the live stream here at once, and on every other replica through the fan-out.
      deps.hub.get(req.agentId)?.close(new ControllerError('permission_denied', `agent ${req.agentId} was revoked: ${reason}; enrol it again`));
      await deps.fanout.publish({ type: 'revoked', agentId: req.agentId, reason });
      log.info({ actor: op.spiffeId, agentId: req.agentId }, 'agent revoked');
      return {};
    },

    async addAdmin(req, ctx) {
      const op = requireOperator(ctx, 'admin');
      if (!isValidName(req.name)) throw new ControllerError('invalid_argument', 'name: 1-128 characters of A-Z a-z 0-9 . _ -');
      if (req.role !== 'admin' && req.role !== 'viewer') throw new ControllerError('invalid_argument', 'role: admin or viewer');
      const publicKeyPem = verifyCsr(req.csrPem);
      const spiffeId = adminSpiffeId(deps.ca.trustDomain, req.name);
      const issued = deps.ca.issueClient({ publicKeyPem, spiffeId, lifetimeMs: deps.operatorCertLifetimeMs, role: req.role });
      await deps.certificates.record({
        serial: issued.serial,
        agentId: null,
        subject: spiffeId,
        keyFingerprint: spkiFingerprint(publicKeyPem),
        tokenId: null,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
        kind: 'operator',
        role: req.role,
      });
      await deps.audit.record({ actor: op.spiffeId, action: 'admins.add', target: spiffeId, details: { role: req.role, serial: issued.serial } });
      log.info({ actor: op.spiffeId, operator: spiffeId, role: req.role }, 'operator certificate issued');
      return { certificatePem: issued.certPem, caPem: deps.ca.certPem, spiffeId };
    },

    async revokeAdmin(req, ctx) {
      const op = requireOperator(ctx, 'admin');
      if (!isValidName(req.name)) throw new ControllerError('invalid_argument', 'name: 1-128 characters of A-Z a-z 0-9 . _ -');
      const spiffeId = adminSpiffeId(deps.ca.trustDomain, req.name);
      if (spiffeId === op.spiffeId) throw new ControllerError('failed_precondition', 'an operator cannot revoke itself');
      const reason = req.reason.slice(0, 500) || 'revoked by an operator';
      const revoked = await deps.certificates.revokeOperator(spiffeId);
      if (revoked === 0) throw new ControllerError('not_found', `no unrevoked certificate of operator ${req.name}`);
      await deps.audit.record({ actor: op.spiffeId, action: 'admins.revoke', target: spiffeId, details: { reason, certificates: revoked } });
      log.info({ actor: op.spiffeId, operator: spiffeId }, 'operator revoked');
      return {};
    },

    async listAdmins(_req, ctx) {
      requireOperator(ctx, 'viewer');
      const now = deps.clock().getTime();
      const certs = await deps.certificates.listOperators();
      return {
        admins: certs.map((c) => ({
          name: c.subject.slice(c.subject.lastIndexOf('/') + 1),
          spiffeId: c.subject,
          role: c.role ?? '',
          serial: c.serial,
          issuedAt: timestampFromDate(c.issuedAt),
          notAfter: timestampFromDate(c.notAfter),
          ...(c.revokedAt ? { revokedAt: timestampFromDate(c.revokedAt) } : {}),
          status: c.revokedAt ? 'revoked' : c.notAfter.getTime() <= now ? 'expired' : 'active',
        })),
      };
    },

    async listAudit(req, ctx) {
      requireOperator(ctx, 'viewer');
      const res = await deps.audit.list({ limit: Math.min(req.limit || 1000, 100_000), ...(req.since ? { since: timestampDate(req.since) } : {}) });
      return {
        entries: res.entries.map((e) => ({ at: timestampFromDate(e.at), actor: e.actor, action: e.action, target: e.target, detailsJson: JSON.stringify(e.details) })),
        more: res.more,
      };
    },
  };
}
