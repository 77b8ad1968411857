import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { ConnectError } from '@connectrpc/connect';
import { ControllerError } from '../errors.js';
import { createFrameReader, type Frame } from './frame-reader.js';
import { grpcStatusFields } from './grpc-status.js';

/**
 * One bidirectional gRPC call served straight on its HTTP/2 stream: messages up as an async
 * iterable, messages down written as they are sent, the status in the trailers. Made for the agent
 * stream, of which a controller holds tens of thousands: per stream it keeps a frame reader, a
 * short queue and a few listeners (no per-call handler pipeline), and a message pushed to the
 * whole fleet is encoded once by the caller and written to each stream as the same bytes.
 *
 * Flow control: at most `readAhead` messages wait here to be taken; past that the stream is
 * paused, Node stops handing its DATA to the session, and HTTP/2's window holds the peer back.
 */
export interface ServerStream {
  /** Messages up, in order; ends when the peer half-closes; throws when a message cannot be taken. */
  readonly messages: AsyncIterable<Frame>;
  /** Writes one message down, framed by frameMessage() (a message for many streams is framed once). Headers go first, with the first message. No-op once ended. */
  send(frame: Buffer): void;
  /** Ends the call with OK (no error) or with the error's status. Once. */
  end(err?: ConnectError): void;
  /** Aborted when the stream closes, whoever closed it (made when first read: a unary call never needs it). */
  readonly signal: AbortSignal;
}

export interface ServerStreamOptions {
  readonly maxMessageBytes: number;
  /** Messages held unread before the stream is paused. Default 2. */
  readonly readAhead?: number;
}

/** How long a peer may take to half-close after the status went out. */
const PEER_CLOSE_GRACE_MS = 10_000;

/** gRPC's content types: the call is answered in the one it was made in. */
export const GRPC_CONTENT_TYPE = /^application\/grpc(\+proto)?(;|$)/i;

export function createServerStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, opts: ServerStreamOptions): ServerStream {
  const readAhead = opts.readAhead ?? 2;
  const contentType = String(headers['content-type'] ?? 'application/grpc');
  const reader = createFrameReader(opts.maxMessageBytes);
  const queue: Frame[] = [];
  let upDone = false;
  let upError: ControllerError | null = null;
  let wake: (() => void) | null = null;
  let responded = false;
  let ended = false;
  let closed = false;
  // Made on first use: an AbortController and the DOMException its abort() makes cost a unary call
  // (an enrolment) more than the rest of this file does.
  let abort: AbortController | null = null;

  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const failUp = (err: ControllerError) => {
    upError ??= err;
    stream.off('data', onData);
    notify();
  };
  function onData(chunk: Buffer) {
    try {
      for (const f of reader.push(chunk)) queue.push(f);
    } catch (err) {
      failUp(err instanceof ControllerError ? err : new ControllerError('invalid_argument', 'unreadable message', { cause: err }));
      return;
    }
    if (queue.length >= readAhead) stream.pause();
    notify();
  }
  stream.on('data', onData);
  stream.once('end', () => {
    upDone = true;
    if (reader.partial > 0) failUp(new ControllerError('invalid_argument', 'the stream ended inside a message'));
    notify();
  });
  // Errors of the stream itself (a reset, a session torn down) end it; 'close' follows.
  stream.on('error', () => undefined);
  stream.once('close', () => {
    upDone = true;
    ended = true;
    closed = true;
    abort?.abort();
    notify();
  });

  const respond = () => {
    if (responded) return;
    responded = true;
    stream.respond({ ':status': 200, 'content-type': contentType, 'grpc-accept-encoding': 'identity' }, { waitForTrailers: true });
  };

  const messages: AsyncIterable<Frame> = {
    [Symbol.asyncIterator]: () => ({
      async next(): Promise<IteratorResult<Frame>> {
        for (;;) {
          if (upError) throw upError;
          const f = queue.shift();
          if (f) {
            if (queue.length < readAhead && stream.isPaused() && !upDone) stream.resume();
            return { value: f, done: false };
          }
          if (upDone) return { value: undefined, done: true };
          if (stream.isPaused()) stream.resume();
          await new Promise<void>((resolve) => (wake = resolve));
        }
      },
    }),
  };

  return {
    messages,
    get signal() {
      if (!abort) {
        abort = new AbortController();
        if (closed) abort.abort();
      }
      return abort.signal;
    },
    send(frame) {
      if (ended || stream.destroyed) return;
      respond();
      stream.write(frame);
    },
    end(err) {
      if (ended) return;
      ended = true;
      if (stream.destroyed || stream.closed) return;
      const status = grpcStatusFields(err);
      // A gRPC client half-closes once it has the status; until then what it still sends is read
      // and dropped, so that flow control cannot hold its end back. One that does not is reset.
      const stopPeer = () => {
        if (upDone) return;
        stream.off('data', onData);
        stream.on('data', () => undefined);
        stream.resume();
        setTimeout(() => {
          if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
        }, PEER_CLOSE_GRACE_MS).unref();
      };
      if (!responded) {
        // Trailers-only: the status in the one HEADERS frame.
        responded = true;
        stream.respond({ ':status': 200, 'content-type': contentType, ...status }, { endStream: true });
        stopPeer();
        return;
      }
      stream.once('wantTrailers', () => {
        stream.sendTrailers(status);
        stopPeer();
      });
      stream.end();
    },
  };
}
