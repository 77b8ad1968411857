import { ControllerError } from '../errors.js';
import type { AdminClient } from './admin-client.js';

/**
 * The agent an operator means by `ref`: its full id, or any prefix of it that only one agent's id
 * starts with (the 8-character ids `events` and `agents ls` print). None or several: an error that
 * says which.
 */
export async function resolveAgentId(client: AdminClient, ref: string): Promise<string> {
  const wanted = ref.trim().toLowerCase();
  if (!wanted) throw new ControllerError('invalid_argument', 'an agent id (or a unique prefix of one) is needed');
  const ids = (await client.listAgents({})).agents.map((a) => a.id);
  if (ids.includes(wanted)) return wanted;
  const matches = ids.filter((id) => id.startsWith(wanted));
  if (matches.length === 1) return matches[0]!;
  if (!matches.length) throw new ControllerError('not_found', `no agent ${ref} (\`vigilctl agents ls\` lists them)`);
  throw new ControllerError('invalid_argument', `${ref} is the start of ${matches.length} agents' ids: ${matches.slice(0, 10).join(', ')}${matches.length > 10 ? ', …' : ''}; give more of it`);
}
