import type { OutgoingHttpHeaders } from 'node:http2';
import type { ConnectError } from '@connectrpc/connect';

/**
 * The status fields of a gRPC response's trailers (or of a trailers-only response): grpc-status,
 * and grpc-message percent-encoded as the gRPC spec asks (any UTF-8 message travels intact; a
 * client decodes it). `undefined` is OK. Codes are the gRPC codes, which Connect's Code enum
 * numbers identically; errors reach here already mapped (services/error-interceptor.ts).
 */
export function grpcStatusFields(err: ConnectError | undefined): OutgoingHttpHeaders {
  if (!err) return { 'grpc-status': '0' };
  return { 'grpc-status': String(err.code), 'grpc-message': encodeURIComponent(err.rawMessage) };
}
