import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { ConnectError } from '@connectrpc/connect';
import { ControllerError } from '../errors.js';
import { frameMessage } from './frame-reader.js';
import { createServerStream } from './server-stream.js';

export interface UnaryCallOptions {
  /** Most bytes in the request message; a larger one is refused from its prefix. */
  readonly maxMessageBytes: number;
}

/**
 * One unary gRPC call served straight on its HTTP/2 stream (grpc/server-stream.ts), without a
 * per-call handler pipeline: exactly one request message, read to the peer's half-close; `handle`
 * turns its bytes into the response message's; the status goes in the trailers (or, on an error
 * before any response, in a trailers-only response). Anything `handle` throws, and the call's own
 * refusals (no message, a second one, one over the limit or compressed: ControllerErrors), are
 * mapped to a status by `toStatus`.
 */
export function serveUnary(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  opts: UnaryCallOptions,
  handle: (request: Buffer) => Promise<Uint8Array>,
  toStatus: (err: unknown) => ConnectError,
): void {
  const call = createServerStream(stream, headers, { maxMessageBytes: opts.maxMessageBytes, readAhead: 1 });
  const run = async () => {
    const messages = call.messages[Symbol.asyncIterator]();
    const first = await messages.next();
    if (first.done) throw new ControllerError('invalid_argument', 'a unary call needs one request message; none came');
    if (!(await messages.next()).done) throw new ControllerError('invalid_argument', 'a unary call takes one request message; a second came');
    const response = await handle(first.value);
    call.send(frameMessage(response));
  };
  run().then(
    () => call.end(),
    (err: unknown) => call.end(toStatus(err)),
  );
}
