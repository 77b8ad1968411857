import { once } from 'node:events';
import { connect, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';

export interface GrpcCallResult {
  readonly headers: IncomingHttpHeaders;
  readonly trailers: IncomingHttpHeaders | null;
  readonly data: Buffer;
}

/**
 * One gRPC call by hand on a new plain-text HTTP/2 session: the body's frames written as given,
 * then a half-close; resolves with the response headers, trailers and body once the stream closed.
 */
export async function grpcCall(base: string, path: string, body: readonly Buffer[], headers: OutgoingHttpHeaders = {}): Promise<GrpcCallResult> {
  const session = connect(base);
  try {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let res: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | null = null;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (res = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => undefined);
    for (const b of body) stream.write(b);
    stream.end();
    await once(stream, 'close');
    return { headers: res, trailers, data: Buffer.concat(chunks) };
  } finally {
    session.close();
  }
}

/** The call's gRPC status: from the trailers, or the headers of a trailers-only response. */
export const grpcStatus = (r: { headers: IncomingHttpHeaders; trailers: IncomingHttpHeaders | null }) => ({
  code: Number((r.trailers ?? r.headers)['grpc-status']),
  message: decodeURIComponent(String((r.trailers ?? r.headers)['grpc-message'] ?? '')),
});
