import { fullJitter, nextCeiling } from './full-jitter.js';
import type { Logger } from 'pino';
import type { Credentials } from '../credentials.js';
import { AgentError } from '../errors.js';
import type { LocalStore } from '../store/local-store.js';
import { createAgentClient } from '../transport/agent-client.js';
import type { StreamOptions } from '../config.js';
import { runStreamSession, type SessionRouter } from './stream-session.js';

export interface StreamClientOptions {
  readonly address: string;
  /** Loaded before every connection (the certificate changes on renewal). */
  readonly credentials: () => Promise<Credentials>;
  /** Stores a renewed key and certificate. */
  readonly saveRenewed: (keyPem: string, certPem: string) => Promise<void>;
  readonly clock: () => Date;
  readonly hostname: string;
  readonly agentVersion: string;
  readonly store: LocalStore;
  readonly router: SessionRouter;
  readonly logger: Logger;
  readonly stream: StreamOptions;
  /** Told each change of the stream's state (the agent's metrics show it). */
  readonly onState?: (state: StreamState) => void;
}

/** connecting: a session is being opened; connected: the controller welcomed it; waiting: backoff before the next; stopped. */
export type StreamState = 'connecting' | 'connected' | 'waiting' | 'stopped';

export interface StreamClient {
  /**
   * Runs until stop(): connects, streams the queue, applies what comes down, renews the
   * certificate, reconnects with backoff. Rejects (AgentError) when going on is pointless: the
   * agent was revoked, or its certificate expired.
   */
  run(): Promise<void>;
  stop(): void;
}

/**
 * The agent's side of Connect, one session after another. The queue is the truth: on every
 * (re)connect the controller says what it has committed, the agent drops that from its queue and
 * sends the rest in order. A delta leaves the queue only when an ack after commit covers it.
 */
export function createStreamClient(opts: StreamClientOptions): StreamClient {
  const log = opts.logger.child({ component: 'stream' });
  const { backoff } = opts.stream;
  let stopped = false;
  let cancelCurrent: (() => void) | null = null;
  let wakeSleep: (() => void) | null = null;
  let reconnectNow = false;

  async function session(): Promise<void> {
    opts.onState?.('connecting');
    const credentials = await opts.credentials();
    const client = createAgentClient({ address: opts.address, caPem: credentials.caPem, certPem: credentials.certPem, keyPem: credentials.keyPem });
    try {
      const s = runStreamSession({
        ...opts.stream,
        client,
        credentials,
        store: opts.store,
        router: opts.router,
        hostname: opts.hostname,
        agentVersion: opts.agentVersion,
        saveRenewed: opts.saveRenewed,
        onRenewed: () => {
          reconnectNow = true;
        },
        onWelcome: () => opts.onState?.('connected'),
        clock: opts.clock,
        logger: log,
      });
      cancelCurrent = s.cancel;
      await s.done;
    } finally {
      cancelCurrent = null;
      client.close();
      opts.onState?.(stopped ? 'stopped' : 'waiting');
    }
  }

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      wakeSleep = () => {
        clearTimeout(t);
        resolve();
      };
    }).finally(() => {
      wakeSleep = null;
    });

  return {
    async run() {
      let delay = backoff.initialMs;
      while (!stopped) {
        const started = Date.now();
        let refused = false;
        try {
          await session();
          if (!stopped) log.warn('controller closed the stream; reconnecting');
        } catch (err) {
          if (stopped) break;
          const code = err instanceof AgentError ? err.code : 'call_failed';
          switch (code) {
            case 'message_refused':
              // The controller refused what this agent sent as a whole (docs/delivery.md): resending
              // it at once would be refused again. Said loudly, retried at the slowest pace (the
              // controller may be upgraded meanwhile); `vigilctl agents show` says "delivery blocked".
              log.error({ reason: (err as Error).message, pendingFrom: opts.store.outbox.pending(0, 1)[0]?.seq ?? null }, 'the controller refused a message from this agent: delivery is blocked; retrying slowly');
              delay = backoff.maxMs;
              refused = true;
              break;
            case 'call_failed':
            case 'controller_unreachable':
              if (!reconnectNow) log.warn({ code, reason: (err as Error).message }, 'stream to controller failed; reconnecting');
              break;
            default:
              throw err; // revoked, or the certificate expired: enrol again
          }
        }
        if (stopped) break;
        if (reconnectNow) {
          reconnectNow = false;
          delay = backoff.initialMs;
          continue;
        }
        if (Date.now() - started > opts.stream.stableAfterMs && !refused) delay = backoff.initialMs;
        await sleep(fullJitter(delay));
        delay = nextCeiling(delay, backoff.maxMs);
      }
    },
    stop() {
      stopped = true;
      cancelCurrent?.();
      wakeSleep?.();
    },
  };
}
