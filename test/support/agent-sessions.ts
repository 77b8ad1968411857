import { randomUUID } from 'node:crypto';
import type { AgentSession } from '../../controller/fleet/agent-hub.js';
import type { DownMessage } from '../../controller/fleet/down-message.js';

/** An in-memory agent stream for the hub: records what is sent down and how it was closed. */
export interface RecordingSession extends AgentSession {
  readonly sent: DownMessage[];
  readonly closedWith: Error | null;
}

export function recordingSession(agentId: string, opts: { labels?: Record<string, string>; remoteAddress?: string } = {}): RecordingSession {
  const sent: DownMessage[] = [];
  let closedWith: Error | null = null;
  return {
    agentId,
    streamId: randomUUID(),
    labels: opts.labels ?? {},
    remoteAddress: opts.remoteAddress ?? '192.0.2.1',
    connectedAt: new Date(),
    sent,
    get closedWith() {
      return closedWith;
    },
    send(msg) {
      if (closedWith) return false;
      sent.push(msg);
      return true;
    },
    close(err) {
      closedWith ??= err;
    },
  };
}
