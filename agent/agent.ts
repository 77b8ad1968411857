import { hostname as osHostname } from 'node:os';
import type { Logger } from 'pino';
import { DEFAULT_LIMITS } from '../core/policy-defaults.js';
import { VIGIL_VERSION } from '../core/version.js';
import { startHealthServer } from '../core/health-server.js';
import { createAgentMetrics } from './agent-metrics.js';
import { compileAgentConfig, type AgentConfigInput } from './config.js';
import { loadCredentials, saveRenewed } from './credentials.js';
import { createIdleMemory } from './idle-memory.js';
import { createMonitor } from './monitor.js';
import { loadNativeAddon } from './native/addon.js';
import { createHashPool } from './scan/hash-pool.js';
import { createMonitorRouter } from './session/monitor-router.js';
import { createStreamClient } from './session/stream-client.js';
import { readIdentity, stateDir } from './state-dir.js';
import { openLocalStore } from './store/local-store.js';

export interface RunningAgent {
  readonly agentId: string;
  /** host:port of /metrics, /healthz and /readyz; null when not served. */
  readonly metricsAddress: string | null;
  /** Resolves when the agent has stopped. */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Runs an enrolled agent: opens its local store, re-applies the last policy it had (the start-up
 * check finds what changed while it was stopped), then streams to the controller.
 */
export async function startAgent(opts: { stateDir: string; logger: Logger; clock?: () => Date; options?: AgentConfigInput; metricsListen?: { host: string; port: number } }): Promise<RunningAgent> {
  const config = compileAgentConfig(opts.options);
  const dir = stateDir(opts.stateDir);
  const identity = await readIdentity(dir);
  const logger = opts.logger.child({ agentId: identity.agentId });
  const clock = opts.clock ?? (() => new Date());
  // Fails now, clearly, when the certificate has expired: the agent must be enrolled again.
  const first = await loadCredentials(dir, clock());
  const store = openLocalStore(dir.db);
  // Niceness and read rate from the last policy this agent had (new limits apply from the next start).
  const limits = store.meta.policy()?.limits ?? DEFAULT_LIMITS;
  const pool = createHashPool({ niceIncrement: limits.nice, ioBytesPerSecond: limits.ioBytesPerSecond });
  const monitor = createMonitor({ store, pool, logger, clock, captureWrites: config.capture.enabled,
    capture: { holdMs: config.capture.holdMs, maxHeld: config.capture.maxHeld },
    watch: { coalesceMs: config.watch.coalesceMs },
  });
  const metrics = createAgentMetrics({ store, monitor, clock });
  metrics.certificateExpiry(first.notAfter);
  let stopping = false;
  const health = opts.metricsListen
    ? await startHealthServer({ listen: opts.metricsListen, registry: metrics.registry, notReady: async () => (stopping ? 'stopping' : null), logger })
    : null;
  const stream = createStreamClient({
    address: identity.controller,
    credentials: async () => {
      const c = await loadCredentials(dir, clock());
      metrics.certificateExpiry(c.notAfter);
      return c;
    },
    onState: (s) => metrics.streamState(s),
    saveRenewed: (keyPem, certPem) => saveRenewed(dir, keyPem, certPem),
    clock,
    hostname: osHostname(),
    agentVersion: VIGIL_VERSION,
    store,
    router: createMonitorRouter({ monitor, meta: store.meta, logger }),
    logger,
    stream: config.stream,
  });
  const idleMemory = createIdleMemory({
    // Threads leaving count as work: what they freed is trimmed at the next quiet look.
    activity: () => `${monitor.jobsStarted()}:${store.outbox.lastSeq()}:${store.outbox.bytes()}:${pool.liveThreads()}`,
    busy: () => monitor.busy(),
    mappedFiles: [store.dataFile],
    addon: loadNativeAddon(),
    logger,
  });
  idleMemory.start();
  const saved = store.meta.policy();
  if (saved) {
    logger.info({ version: saved.version }, 'start-up check against the local baseline');
    void monitor.applyPolicy(saved).catch((err: unknown) => logger.error({ err }, 'start-up check failed'));
  }
  const done = stream.run().finally(async () => {
    stopping = true;
    await health?.close();
    idleMemory.stop();
    await monitor.close();
    await pool.close();
    await store.close();
  });
  return {
    agentId: identity.agentId,
    metricsAddress: health?.address ?? null,
    done,
    async stop() {
      stopping = true;
      stream.stop();
      await done.catch(() => undefined);
    },
  };
}
