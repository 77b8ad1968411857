import type { ServiceImpl } from '@connectrpc/connect';
import type { AdminService } from '../../proto/gen/vigil/v1/admin_pb.js';
import { adminMethods, type AdminsDeps } from './admin/admins.js';
import { agentMethods, type AgentsDeps } from './admin/agents.js';
import { auditMethods } from './admin/audit.js';
import { commandMethods, type CommandsDeps } from './admin/commands.js';
import { eventMethods } from './admin/events.js';
import { fileMethods } from './admin/files.js';
import { policyMethods, type PoliciesDeps } from './admin/policies.js';
import { tokenMethods, type TokensDeps } from './admin/tokens.js';
import type { StateStore } from '../store/index.js';

export type AdminDeps = AgentsDeps & TokensDeps & PoliciesDeps & CommandsDeps & AdminsDeps & { readonly files: StateStore };

/**
 * AdminService for vigilctl, one file per noun under admin/. Viewers read; changes need the admin
 * role and are audited.
 */
export function createAdminService(deps: AdminDeps): ServiceImpl<typeof AdminService> {
  return {
    ...agentMethods(deps),
    ...fileMethods(deps),
    ...eventMethods(deps),
    ...tokenMethods(deps),
    ...policyMethods(deps),
    ...commandMethods(deps),
    ...adminMethods(deps),
    ...auditMethods(deps),
  };
}
