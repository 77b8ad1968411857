import { AgentError } from '../errors.js';
import type { AgentClient } from './agent-client.js';
import { agentErrorFromGrpc } from './grpc-errors.js';
import { downFromPb, upToPb } from './stream-codec.js';
import type { DownMessage, UpMessage } from './stream-messages.js';

/** One Connect stream in domain messages. */
export interface AgentStream {
  /** Sends a message; nothing once the stream has ended (what matters, the queue, is resent on the next one). */
  send(m: UpMessage): void;
  /** Ends the stream from this side; onEnd follows. */
  cancel(): void;
  readonly ended: boolean;
}

export interface AgentStreamHandlers {
  onMessage(m: DownMessage): void;
  /** Called once: null when the controller closed the stream cleanly, else why it failed. */
  onEnd(err: AgentError | null): void;
}

/** Opens Connect on the client: the agent's one gRPC edge for its stream (statuses become AgentErrors here). */
export function openAgentStream(client: AgentClient, handlers: AgentStreamHandlers): AgentStream {
  const call = client.connect();
  let ended = false;
  let failure: AgentError | null = null;
  const end = (err: AgentError | null) => {
    if (ended) return;
    ended = true;
    handlers.onEnd(failure ?? err);
  };
  call.on('data', (pb) => {
    if (ended) return;
    let m: DownMessage | null;
    try {
      m = downFromPb(pb);
    } catch (cause) {
      // A message this agent cannot read: a broken or newer controller. Reconnect rather than act on half of it.
      failure = new AgentError('call_failed', `unreadable message from the controller: ${(cause as Error).message}`, { cause });
      call.cancel();
      return;
    }
    if (m) handlers.onMessage(m);
  });
  call.once('error', (err) => end(agentErrorFromGrpc(err, 'stream')));
  call.once('end', () => end(null));
  return {
    send(m) {
      if (!ended) call.write(upToPb(m));
    },
    cancel: () => call.cancel(),
    get ended() {
      return ended;
    },
  };
}
