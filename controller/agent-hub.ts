import type { Logger } from 'pino';

/** One live agent stream, as the rest of the controller sees it. */
export interface AgentSession<M> {
  readonly agentId: string;
  readonly connectedAt: Date;
  send(msg: M): boolean;
  close(reason: string): void;
}

/** The agents connected to this controller process, by id. */
export interface AgentHub<M> {
  /** Registers a session; returns the function that removes it. */
  attach(session: AgentSession<M>): () => void;
  get(agentId: string): AgentSession<M> | undefined;
  ids(): string[];
  broadcast(msg: M): number;
}

export function createAgentHub<M>(logger: Logger): AgentHub<M> {
  const sessions = new Map<string, AgentSession<M>>();
  return {
    attach(session) {
      const previous = sessions.get(session.agentId);
      if (previous) {
        // Two live streams for one identity: either a reconnect racing the old stream's teardown,
        // or a stolen credential. Keep the newest and say so.
        logger.warn({ agentId: session.agentId }, 'second live stream for one agent identity; closing the older one (possible credential theft if it persists)');
        previous.close('replaced by a newer stream');
      }
      sessions.set(session.agentId, session);
      return () => {
        if (sessions.get(session.agentId) === session) sessions.delete(session.agentId);
      };
    },
    get: (id) => sessions.get(id),
    ids: () => [...sessions.keys()],
    broadcast(msg) {
      let n = 0;
      for (const s of sessions.values()) if (s.send(msg)) n++;
      return n;
    },
  };
}
