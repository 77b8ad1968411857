import type { DownMessage } from './down-message.js';

/** One live agent stream, as the rest of the controller sees it. */
export interface AgentSession {
  readonly agentId: string;
  /** Unique per stream, so replicas can tell two streams of one identity apart. */
  readonly streamId: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly remoteAddress: string;
  readonly connectedAt: Date;
  /** Queues a message down the stream; false when the stream is closed. */
  send(msg: DownMessage): boolean;
  /** Ends the stream with this error. */
  close(err: Error): void;
}

/** The agents connected to this controller process, by id. */
export interface AgentHub {
  /** Registers a session; returns the function that removes it. */
  attach(session: AgentSession): () => void;
  get(agentId: string): AgentSession | undefined;
  ids(): string[];
  all(): AgentSession[];
  /** Sessions attached now. */
  count(): number;
}

/**
 * One live stream per agent identity. A second one closes the first and is reported through
 * onDuplicate: a stolen credential in use, or a reconnect racing its own dead connection.
 */
export function createAgentHub(opts: { onDuplicate: (older: AgentSession, newer: AgentSession) => void }): AgentHub {
  const sessions = new Map<string, AgentSession>();
  return {
    attach(session) {
      const previous = sessions.get(session.agentId);
      if (previous) opts.onDuplicate(previous, session);
      sessions.set(session.agentId, session);
      return () => {
        if (sessions.get(session.agentId) === session) sessions.delete(session.agentId);
      };
    },
    get: (id) => sessions.get(id),
    ids: () => [...sessions.keys()],
    all: () => [...sessions.values()],
    count: () => sessions.size,
  };
}
