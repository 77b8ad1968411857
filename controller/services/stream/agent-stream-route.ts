import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { create, isMessage, toBinary } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import { decodeConnectRequest } from '../../../proto/connect-request-decoder.js';
import { AgentService, ConnectResponseSchema, type ConnectRequest } from '../../../proto/gen/vigil/v1/agent_pb.js';
import { MAX_AGENT_MESSAGE_BYTES } from '../../../proto/wire-limits.js';
import { ControllerError } from '../../errors.js';
import { frameMessage } from '../../grpc/frame-reader.js';
import { createServerStream, GRPC_CONTENT_TYPE } from '../../grpc/server-stream.js';
import { createTurnQueue, type TurnQueue } from '../../grpc/turn-queue.js';
import type { ConnectService } from '../connect-service.js';
import { toConnectError } from '../error-interceptor.js';
import { identityFromStream } from '../peer-identity.js';
import type { AgentWire } from './agent-wire.js';
import type { PbDownMessage } from './down-message-pb.js';

/** The agent stream's HTTP/2 path. */
export const CONNECT_PATH = `/${AgentService.typeName}/${AgentService.method.connect.name}`;

export interface AgentStreamRouteOptions {
  readonly connect: ConnectService;
  readonly trustDomain: string;
  readonly logger: Logger;
  /** Most bytes in one message up (default: proto/wire-limits.ts). */
  readonly maxMessageBytes?: number;
}

/**
 * Serves AgentService.Connect on raw HTTP/2 streams (grpc/server-stream.ts), without connect-node's
 * per-call pipeline: the one RPC a controller holds ten thousand of at once and pushes fleet-wide
 * messages down. Every other RPC on the listener goes through connect-node. Errors become statuses
 * through the one mapping (error-interceptor.ts), as on every other RPC.
 */
export function createAgentStreamRoute(opts: AgentStreamRouteOptions): (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void {
  const maxMessageBytes = opts.maxMessageBytes ?? MAX_AGENT_MESSAGE_BYTES;
  // Every stream's large messages are decoded one per event-loop turn (grpc/turn-queue.ts).
  const turns = createTurnQueue();
  return (stream, headers) => {
    if (headers[':method'] !== 'POST' || !GRPC_CONTENT_TYPE.test(String(headers['content-type'] ?? ''))) {
      stream.on('error', () => undefined);
      stream.respond({ ':status': headers[':method'] === 'POST' ? 415 : 405 }, { endStream: true });
      return;
    }
    const call = createServerStream(stream, headers, { maxMessageBytes });
    const wire: AgentWire = {
      requests: decoded(call.messages, turns),
      send: (msg) => call.send(encodeDown(msg)),
      signal: call.signal,
    };
    opts.connect.serve(identityFromStream(stream, opts.trustDomain), wire).then(
      () => call.end(),
      (err: unknown) => call.end(toConnectError(err, opts.logger)),
    );
  };
}

/**
 * A message at least this large (a batch of some 40 deltas) waits for a turn of its own before it
 * is decoded: its decoding, mapping and queueing then run in that turn, apart from other streams'.
 * A small one (a quiet host's delta, an ack-sized message) is decoded as it comes.
 */
const LARGE_MESSAGE_BYTES = 8 * 1024;

function decoded(frames: AsyncIterable<Buffer>, turns: TurnQueue): AsyncIterable<ConnectRequest> {
  return {
    [Symbol.asyncIterator]() {
      const it = frames[Symbol.asyncIterator]();
      return {
        async next(): Promise<IteratorResult<ConnectRequest>> {
          const r = await it.next();
          if (r.done) return r;
          if (r.value.length >= LARGE_MESSAGE_BYTES) await turns.wait();
          try {
            return { value: decodeConnectRequest(r.value), done: false };
          } catch (err) {
            throw new ControllerError('invalid_argument', `malformed message: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
          }
        },
      };
    },
  };
}

/**
 * Framed encodings of the messages every stream of a selection shares (a policy version: the same
 * read-only message object, down-message-pb.ts): encoded and framed once, then the same bytes are
 * written to each stream.
 */
const sharedFrames = new WeakMap<object, Buffer>();

function encodeDown(msg: PbDownMessage): Buffer {
  if (!isMessage(msg, ConnectResponseSchema)) return frameMessage(toBinary(ConnectResponseSchema, create(ConnectResponseSchema, msg)));
  let frame = sharedFrames.get(msg);
  if (!frame) {
    frame = frameMessage(toBinary(ConnectResponseSchema, msg));
    sharedFrames.set(msg, frame);
  }
  return frame;
}
