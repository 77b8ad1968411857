import type { Logger } from 'pino';
import type { Notifier } from '../alerts/notifier.js';
import { ControllerError } from '../errors.js';
import type { AnnouncedStream, Fanout } from '../fanout.js';
import type { AuditStore } from '../store/index.js';
import type { AgentHub, AgentSession } from './agent-hub.js';

/**
 * One live stream per agent identity, across replicas: the newest wins, the older is closed and the
 * event reported (log, audit, a security notification): a stolen credential in use, or a reconnect
 * racing its own dead connection.
 */
export interface DuplicateStreams {
  /** For createAgentHub: two streams of one agent on this replica. */
  onDuplicate(older: AgentSession, newer: AgentSession): void;
  /** Closes a stream here when another replica announces a newer one of the same agent. */
  watch(hub: AgentHub): void;
  /**
   * Tells the other replicas about a stream opened here: at once when nothing is being published,
   * else with everything announced meanwhile in the next notification, so a reconnect storm costs
   * one NOTIFY per batch, not per stream.
   */
  announce(session: AgentSession): void;
}

/** Streams per notification: NOTIFY payloads must stay under 8,000 bytes. */
const PER_NOTIFY = 40;

export function createDuplicateStreams(deps: { fanout: Fanout; audit: AuditStore; notifier: Notifier; logger: Logger }): DuplicateStreams {
  const { fanout, audit, notifier, logger } = deps;
  const report = (agentId: string, olderRemote: string, newerRemote: string) => {
    const text = `agent ${agentId} opened a second live stream (from ${newerRemote || 'unknown'}) while one was open (from ${olderRemote || 'unknown'}): possible credential theft; the older stream was closed`;
    logger.warn({ agentId, olderRemote, newerRemote }, text);
    void audit.record({ actor: 'controller', action: 'security.duplicate_stream', target: agentId, details: { olderRemote, newerRemote } }).catch(() => undefined);
    void notifier.security({ kind: 'duplicate_stream', agentId, text }).catch((err: unknown) => logger.error({ err }, 'security notification failed'));
  };
  let waiting: AnnouncedStream[] = [];
  let publishing = false;
  const publish = async () => {
    publishing = true;
    while (waiting.length) {
      const streams = waiting.splice(0, PER_NOTIFY);
      await fanout.publish({ type: 'streams', streams }).catch((err: unknown) => logger.warn({ err, streams: streams.length }, 'fan-out publish failed'));
    }
    publishing = false;
  };
  return {
    onDuplicate(older, newer) {
      report(newer.agentId, older.remoteAddress, newer.remoteAddress);
      older.close(new ControllerError('unavailable', 'replaced by a newer stream of the same agent'));
    },
    watch(hub) {
      fanout.subscribe((event, origin) => {
        if (event.type !== 'streams' || origin === fanout.replicaId) return;
        for (const s of event.streams) {
          const local = hub.get(s.agentId);
          if (local && local.streamId !== s.streamId) {
            report(s.agentId, local.remoteAddress, s.remote);
            local.close(new ControllerError('unavailable', 'replaced by a newer stream of the same agent on another controller'));
          }
        }
      });
    },
    announce(session) {
      waiting.push({ agentId: session.agentId, streamId: session.streamId, remote: session.remoteAddress });
      if (!publishing) void publish();
    },
  };
}
