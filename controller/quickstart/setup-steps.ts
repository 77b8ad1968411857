import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_LIMITS, defineRule } from '../../core/policy-schema.js';
import { policyToPb } from '../../proto/convert.js';
import type { VigilHome } from '../home.js';
import { initHome } from '../init.js';
import type { AdminClient } from '../vigilctl/admin-client.js';

/** The quickstart's idempotent set-up steps: each does nothing when its part is there already. */

/** A CA and operator credential in the home, made once. Returns whether it was made now. */
export async function ensureHome(home: VigilHome, addresses: { listen: string; enrolListen: string }): Promise<boolean> {
  if (existsSync(home.caCert)) return false;
  await initHome(home, {
    serverNames: ['localhost', '127.0.0.1'],
    trustDomain: 'vigil.local',
    address: addresses.listen,
    enrolAddress: addresses.enrolListen,
    operatorName: 'admin',
    operatorLifetimeMs: 365 * 86_400_000,
  });
  return true;
}

/** The local agent enrolled with a one-use token (by `vigil-agent enrol`, a real process); null when it is, else the failure's stderr. */
export async function ensureEnrolled(client: AdminClient, agentMain: string, agentDir: string, env: NodeJS.ProcessEnv): Promise<string | null> {
  if (existsSync(resolve(agentDir, 'identity.json'))) return null;
  const { joinString } = await client.createToken({ ttlSeconds: 600, uses: 1 });
  const enrol = spawn(process.execPath, [agentMain, 'enrol', joinString, '--state-dir', agentDir], { env, stdio: ['ignore', 'inherit', 'pipe'] });
  let errors = '';
  enrol.stderr!.on('data', (d: Buffer) => (errors += d.toString()));
  const code = await new Promise<number | null>((r) => enrol.once('exit', r));
  return code === 0 ? null : errors || `exit ${code}`;
}

/** A policy watching exactly these directories, every change alerting; the new version, or null when it was in force. */
export async function ensurePolicy(client: AdminClient, dirs: readonly string[]): Promise<bigint | null> {
  const current = (await client.getPolicy({})).policy;
  const wanted = [...dirs].sort().join('\n');
  if (current && current.rules.flatMap((r) => r.paths).sort().join('\n') === wanted) return null;
  const rule = defineRule({ name: 'quickstart', paths: [...dirs], exclude: ['**/*.swp', '**/*~'], alert: true, selector: {} });
  const res = await client.applyPolicy({ policy: policyToPb({ version: 0, limits: DEFAULT_LIMITS, rules: [rule] }) });
  return res.version;
}
