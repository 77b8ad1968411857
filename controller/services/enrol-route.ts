import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import { AgentService, EnrollRequestSchema, EnrollResponseSchema, type EnrollRequest } from '../../proto/gen/vigil/v1/agent_pb.js';
import { ControllerError } from '../errors.js';
import { serveUnary } from '../grpc/unary-call.js';
import type { EnrolService } from './enrol-service.js';
import { toConnectError } from './error-interceptor.js';
import { remoteAddressFromStream } from './peer-identity.js';

/** The Enroll RPC's HTTP/2 path. */
export const ENROLL_PATH = `/${AgentService.typeName}/${AgentService.method.enroll.name}`;

export interface EnrolRouteOptions {
  readonly enrol: EnrolService;
  readonly logger: Logger;
  /** Most bytes in the request message. */
  readonly maxMessageBytes: number;
}

/**
 * Serves AgentService.Enroll over gRPC on raw HTTP/2 streams (grpc/unary-call.ts), without
 * connect-node's per-call pipeline, which cost about as much controller CPU as the enrolment's
 * own work outside signing (docs/benchmarks.md, "Enrolment (session 13)"). Agents enrol over
 * gRPC; other protocols on the path (Connect, for curl) stay with connect-node. Errors become
 * statuses through the one mapping (error-interceptor.ts), as on every other RPC.
 */
export function createEnrolRoute(opts: EnrolRouteOptions): (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void {
  const toStatus = (err: unknown) => toConnectError(err, opts.logger);
  return (stream, headers) =>
    serveUnary(
      stream,
      headers,
      { maxMessageBytes: opts.maxMessageBytes },
      async (bytes) => {
        let req: EnrollRequest;
        try {
          req = fromBinary(EnrollRequestSchema, bytes);
        } catch (err) {
          throw new ControllerError('invalid_argument', `malformed message: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
        const res = await opts.enrol.enrol(req, remoteAddressFromStream(stream));
        return toBinary(EnrollResponseSchema, create(EnrollResponseSchema, res));
      },
      toStatus,
    );
}
