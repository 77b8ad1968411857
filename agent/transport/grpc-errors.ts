import grpc from '@grpc/grpc-js';
import { AgentError } from '../errors.js';

/**
 * A status message as grpc-js hands it over: percent-encoded where the server encoded it (gRPC
 * spec), with other `%` signs left as written. Each run of %XX escapes is decoded on its own.
 */
export function grpcText(text: string): string {
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

const UNREACHABLE = new Set<number>([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);
const REFUSED_ENROLMENT = new Set<number>([
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNAUTHENTICATED,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.NOT_FOUND,
  grpc.status.ALREADY_EXISTS,
]);

/**
 * The one place a gRPC status becomes an agent error (the rest of the agent branches on the
 * AgentError code): `enrol` for the Enroll call, `stream` for Connect.
 */
export function agentErrorFromGrpc(err: unknown, call: 'enrol' | 'stream'): AgentError {
  if (err instanceof AgentError) return err;
  const e = err as { code?: number; details?: string; message?: string };
  const reason = grpcText(e.details ?? e.message ?? String(err));
  const code = e.code ?? -1;
  if (UNREACHABLE.has(code)) return new AgentError('controller_unreachable', `cannot reach the controller: ${reason}`, { cause: err });
  if (call === 'enrol') {
    return REFUSED_ENROLMENT.has(code)
      ? new AgentError('enrol_refused', `enrolment refused: ${reason}`, { cause: err })
      : new AgentError('call_failed', `enrolment failed: ${reason}`, { cause: err });
  }
  if (code === grpc.status.PERMISSION_DENIED) return new AgentError('revoked', `the controller refused this agent: ${reason}`, { cause: err });
  // The controller refused what this agent sent as a whole (docs/delivery.md).
  if (code === grpc.status.INVALID_ARGUMENT || code === grpc.status.RESOURCE_EXHAUSTED) return new AgentError('message_refused', reason, { cause: err });
  return new AgentError('call_failed', reason, { cause: err });
}
