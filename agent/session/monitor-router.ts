import type { Logger } from 'pino';
import type { Monitor, ScanSummary } from '../monitor.js';
import type { AgentMeta } from '../store/agent-meta.js';
import type { ScanReport } from '../../core/scan-summary.js';
import { failedCommandReport } from './command-failure.js';
import type { SessionRouter } from './stream-session.js';

const reportOf = (commandId: string, s: ScanSummary): ScanReport => ({
  commandId: commandId || null,
  policyVersion: s.policyVersion,
  summary: { filesScanned: s.filesScanned, changes: s.changes, errors: s.errors, startedAt: s.startedAt, finishedAt: s.finishedAt },
});

/** What comes down the stream, routed to the monitor: policies, commands, repairs. */
export function createMonitorRouter(deps: { monitor: Monitor; meta: AgentMeta; logger: Logger }): SessionRouter {
  const { monitor, logger: log } = deps;
  return {
    async policy(policy) {
      const applied = Math.max(monitor.policy?.version ?? 0, 0);
      if (policy.version < applied) return null; // an older version from a lagging replica
      if (deps.meta.policy()?.version === policy.version && monitor.policy?.version === policy.version) return null;
      log.info({ version: policy.version }, 'policy received');
      return reportOf('', await monitor.applyPolicy(policy));
    },
    async command(id, command) {
      if (command.kind !== 'rescan') {
        // Refused, and said so: the controller marks the command failed instead of waiting for it.
        log.warn({ commandId: id }, 'unknown command refused');
        return failedCommandReport(id, 'unknown command kind; this agent is older than the controller', new Date());
      }
      log.info({ commandId: id, fullHash: command.fullHash }, 'rescan requested');
      return reportOf(id, await monitor.rescan(command.fullHash));
    },
    currentPolicy: () => monitor.policy,
    recordRepairs: (repairs) => monitor.recordRepairs(repairs),
    catchUp() {
      monitor.rescan(false).catch((err: unknown) => log.error({ err }, 're-scan after renumbering failed'));
    },
    scheduledOnly: () => monitor.scheduledOnly(),
    watch(onQueued, onStatus) {
      monitor.on('queued', onQueued);
      monitor.on('status', onStatus);
      return () => {
        monitor.off('queued', onQueued);
        monitor.off('status', onStatus);
      };
    },
  };
}
