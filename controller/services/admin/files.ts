import type { ServiceImpl } from '@connectrpc/connect';
import { fileStateToPb } from '../../../proto/convert.js';
import type { AdminService } from '../../../proto/gen/vigil/v1/admin_pb.js';
import type { StateStore } from '../../store/index.js';
import { requireOperator } from '../peer-identity.js';

const FILES_DEFAULT_LIMIT = 1000;
const FILES_MAX_LIMIT = 10_000;

/** `vigilctl files`: an agent's current state, a page at a time by path. */
export function fileMethods(deps: { readonly files: StateStore }): Pick<ServiceImpl<typeof AdminService>, 'listFiles'> {
  return {
    async listFiles(req, ctx) {
      requireOperator(ctx, 'viewer');
      const limit = Math.min(req.limit || FILES_DEFAULT_LIMIT, FILES_MAX_LIMIT);
      const page = await deps.files.page(req.agentId, { ...(req.after.length ? { after: Buffer.from(req.after) } : {}), limit });
      return { files: page.map((f) => ({ path: f.path, state: fileStateToPb(f.state), updatedSeq: BigInt(f.updatedSeq) })) };
    },
  };
}
