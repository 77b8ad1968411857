import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Monitor } from './monitor.js';
import type { StreamState } from './session/stream-client.js';
import type { LocalStore } from './store/local-store.js';

const STATES: readonly StreamState[] = ['connecting', 'connected', 'waiting', 'stopped'];

/**
 * The agent's Prometheus metrics (docs/deploy.md, "Health and metrics"), read from what the agent
 * already keeps when Prometheus scrapes: its queue (the outbox), its resync flag and gap records,
 * the roots its watcher cannot cover, its stream's state and its certificate's expiry. Names:
 * `vigil_agent_` prefix, base units; no path in any label.
 */
export interface AgentMetrics {
  readonly registry: Registry;
  /** The stream's state from now on. */
  streamState(state: StreamState): void;
  /** The certificate in use expires then. */
  certificateExpiry(notAfter: Date): void;
}

export function createAgentMetrics(deps: { store: Pick<LocalStore, 'outbox' | 'meta'>; monitor: Pick<Monitor, 'scheduledOnly' | 'busy'>; clock: () => Date }): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const { outbox, meta } = deps.store;
  let state: StreamState = 'connecting';
  let notAfter: Date | null = null;
  const gauge = (name: string, help: string, value: () => number | null) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const v = value();
        if (v !== null) this.set(v);
      },
    });
  gauge('vigil_agent_queue_deltas', 'Deltas queued and not acked by the controller.', () => outbox.length());
  gauge('vigil_agent_queue_bytes', 'Bytes of the queued deltas.', () => outbox.bytes());
  gauge('vigil_agent_queue_limit_bytes', 'The queue’s limit (policy limits.queue_bytes): past it changes are recorded locally and reconciled.', () => outbox.limitBytes());
  gauge('vigil_agent_oldest_unacked_age_seconds', 'Age of the oldest delta not acked yet (0 when none).', () => {
    const [oldest] = outbox.pending(0, 1);
    return oldest ? Math.max(0, (deps.clock().getTime() - oldest.detectedAt.getTime()) / 1000) : 0;
  });
  gauge('vigil_agent_resync_needed', '1 while the queue overflowed and a reconciliation is due.', () => (outbox.resync() ? 1 : 0));
  gauge('vigil_agent_gap_records', 'Gaps recorded (inotify overflows and other moments changes may have been missed), since enrolment.', () => meta.gaps().total);
  gauge('vigil_agent_scheduled_only_paths', 'Policy roots and directories the watcher cannot cover (checked by scheduled scans only).', () => deps.monitor.scheduledOnly().length);
  gauge('vigil_agent_monitor_busy', '1 while a scan or check runs or waits its turn.', () => (deps.monitor.busy() ? 1 : 0));
  gauge('vigil_agent_certificate_expiry_timestamp_seconds', 'When the agent’s certificate expires (Unix time); renewed before.', () => (notAfter ? notAfter.getTime() / 1000 : null));
  new Gauge({
    name: 'vigil_agent_stream_state',
    help: 'The stream to the controller: 1 for its current state (connecting, connected, waiting to reconnect, stopped).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      for (const s of STATES) this.set({ state: s }, s === state ? 1 : 0);
    },
  });
  return {
    registry,
    streamState(s) {
      state = s;
    },
    certificateExpiry(d) {
      notAfter = d;
    },
  };
}
