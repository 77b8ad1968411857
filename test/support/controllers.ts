import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { enrol } from '../../agent/enrol.js';
import { compileControllerConfig, type ControllerConfig } from '../../controller/config.js';
import { startController, type RunningController } from '../../controller/controller.js';
import { vigilHome, type VigilHome } from '../../controller/home.js';
import { initHome } from '../../controller/init.js';
import { createAdminClient, type AdminClient } from '../../controller/vigilctl/admin-client.js';
import { createServerDatabase } from './databases.js';

/** A controller home made by init, in a temporary directory. */
export async function makeHome(root: string, name: string, extra: { caPassphrase?: string } = {}): Promise<VigilHome> {
  const home = vigilHome(join(root, name));
  await initHome(home, {
    serverNames: ['localhost', '127.0.0.1'],
    trustDomain: 'vigil.test',
    address: '127.0.0.1:8443',
    enrolAddress: '127.0.0.1:8444',
    operatorName: 'admin',
    operatorLifetimeMs: 86_400_000,
    ...extra,
  });
  return home;
}

/** Log lines a test can search, instead of a silent logger. */
export function captureLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
  return { logger, lines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

export interface TestController {
  readonly controller: RunningController;
  readonly admin: AdminClient;
  readonly config: ControllerConfig;
  stop(): Promise<void>;
}

/** Starts a controller in this process on port 0; `env` is what its config reads. */
export async function startTestController(
  home: VigilHome,
  opts: { env?: NodeJS.ProcessEnv; clock?: () => Date; logger?: Logger; tweak?: (c: ControllerConfig) => ControllerConfig } = {},
): Promise<TestController> {
  const base = compileControllerConfig({ home: home.dir, listen: '127.0.0.1:0', enrolListen: '127.0.0.1:0', env: opts.env ?? {} });
  const config = opts.tweak ? opts.tweak(base) : base;
  const controller = await startController(config, { logger: opts.logger ?? pino({ level: 'silent' }), clock: opts.clock ?? (() => new Date()) });
  const admin = (await createAdminClient(home, controller.address)).client;
  return { controller, admin, config, stop: () => controller.stop() };
}

/** Enrols a new agent into `dir` with a one-use token, as `vigil-agent enrol` does. */
export async function enrolTestAgent(ctl: TestController, dir: string): Promise<{ dir: string; id: string }> {
  const { joinString } = await ctl.admin.createToken({ ttlSeconds: 600, uses: 1 });
  const id = await enrol({ joinString, stateDir: dir, logger: pino({ level: 'silent' }) });
  return { dir, id: id.agentId };
}

/** A database for controllers under test: a fresh one on the Postgres server, or PGlite (undefined). */
export async function testDatabaseEnv(): Promise<{ env: NodeJS.ProcessEnv; drop: () => Promise<void> }> {
  if (!process.env.DATABASE_URL) return { env: {}, drop: async () => undefined };
  const db = await createServerDatabase(process.env.DATABASE_URL);
  return { env: { DATABASE_URL: db.url }, drop: db.drop };
}

export function tempRoot(prefix: string): { root: string; remove: () => void } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}
