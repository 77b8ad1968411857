import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from './errors.js';

/** The agent's own files. key.pem never leaves the host and is 0600. */
export interface StateDir {
  readonly dir: string;
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
  readonly identity: string;
  /** LMDB environment: baseline, queue, meta. */
  readonly db: string;
}

export interface AgentIdentity {
  readonly agentId: string;
  readonly trustDomain: string;
  /** host:port of the controller's mutual-TLS listener. */
  readonly controller: string;
}

export function defaultStateDir(): string {
  return process.env.VIGIL_AGENT_STATE_DIR || (process.getuid?.() === 0 ? '/var/lib/vigil-agent' : join(homedir(), '.vigil-agent'));
}

export function stateDir(dir: string): StateDir {
  return {
    dir,
    key: join(dir, 'key.pem'),
    cert: join(dir, 'cert.pem'),
    ca: join(dir, 'ca.pem'),
    identity: join(dir, 'identity.json'),
    db: join(dir, 'db'),
  };
}

export async function readIdentity(s: StateDir): Promise<AgentIdentity> {
  try {
    return JSON.parse(await readFile(s.identity, 'utf8')) as AgentIdentity;
  } catch (cause) {
    throw new AgentError('not_enrolled', `no enrolment in ${s.dir}: run \`vigil-agent enrol JOIN --state-dir ${s.dir}\` first`, { cause });
  }
}
