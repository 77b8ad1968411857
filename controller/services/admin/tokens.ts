import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { validateLabels } from '../../../core/policy-schema.js';
import { formatJoinString, generateToken } from '../../../pki/index.js';
import type { AdminService } from '../../../proto/gen/vigil/v1/admin_pb.js';
import { ControllerError } from '../../errors.js';
import type { AuditStore, TokenStore } from '../../store/index.js';
import { requireOperator } from '../peer-identity.js';

export interface TokensDeps {
  readonly logger: Logger;
  readonly tokens: TokenStore;
  readonly audit: AuditStore;
  /** CA pins for join strings (several during a CA rotation). */
  readonly pins: readonly string[];
  /** Where agents reach the enrolment listener; known once it listens. */
  readonly enrolAddress: () => string;
}

export const TOKEN_DEFAULT_TTL_S = 3600;
export const TOKEN_MAX_TTL_S = 30 * 86400;
export const TOKEN_MAX_USES = 100_000;

/** `vigilctl tokens`: enrolment tokens and the join strings that carry them. */
export function tokenMethods(deps: TokensDeps): Pick<ServiceImpl<typeof AdminService>, 'createToken' | 'listTokens' | 'revokeToken'> {
  const log = deps.logger.child({ component: 'admin' });
  return {
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
  };
}
