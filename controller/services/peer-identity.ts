import type { Http2ServerRequest, ServerHttp2Stream } from 'node:http2';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { createContextKey, type HandlerContext } from '@connectrpc/connect';
import { parseSpiffeId } from '../../pki/index.js';
import { ControllerError } from '../errors.js';

export type OperatorRole = 'admin' | 'viewer';

/** Who is on the other end, taken from the TLS peer certificate of this very request. */
export interface PeerIdentity {
  readonly kind: 'agent' | 'admin';
  readonly id: string;
  readonly spiffeId: string;
  readonly serial: string;
  /** Operators only. */
  readonly role: OperatorRole | null;
  readonly remoteAddress: string;
}

export const peerIdentityKey = createContextKey<PeerIdentity | null>(null, { description: 'TLS peer identity' });
export const remoteAddressKey = createContextKey<string>('', { description: 'TCP peer address' });

function socketOf(req: IncomingMessage | Http2ServerRequest): TLSSocket | undefined {
  return ('stream' in req ? req.stream.session?.socket : req.socket) as TLSSocket | undefined;
}

/** The identity of an HTTP/2 stream's connection (see identityFromRequest). */
export function identityFromStream(stream: ServerHttp2Stream, trustDomain: string): PeerIdentity | null {
  return identityOfSocket(stream.session?.socket as TLSSocket | undefined, trustDomain);
}

/** The TCP peer address of the request's connection. */
export function remoteAddressFromRequest(req: IncomingMessage | Http2ServerRequest): string {
  return socketOf(req)?.remoteAddress ?? '';
}

/** The TCP peer address of an HTTP/2 stream's connection. */
export function remoteAddressFromStream(stream: ServerHttp2Stream): string {
  return stream.session?.socket?.remoteAddress ?? '';
}

/** Identities by connection: a TLS connection has one peer certificate for its whole life. */
const byConnection = new WeakMap<TLSSocket, { readonly trustDomain: string; readonly identity: PeerIdentity | null }>();

/**
 * Reads the peer certificate from the request's own TLS socket, once per connection, so that a
 * resumed session or a reused connection is judged by the certificate it actually presented, and
 * the many streams of one connection do not decode it again.
 */
export function identityFromRequest(req: IncomingMessage | Http2ServerRequest, trustDomain: string): PeerIdentity | null {
  return identityOfSocket(socketOf(req), trustDomain);
}

function identityOfSocket(socket: TLSSocket | undefined, trustDomain: string): PeerIdentity | null {
  if (!socket || typeof socket.getPeerX509Certificate !== 'function' || !socket.authorized) return null;
  const known = byConnection.get(socket);
  if (known && known.trustDomain === trustDomain) return known.identity;
  const identity = readIdentity(socket, trustDomain);
  byConnection.set(socket, { trustDomain, identity });
  return identity;
}

/**
 * The peer's leaf certificate as an X509Certificate (a quarter of getPeerCertificate()'s cost,
 * which also computes three fingerprints and decodes the key: it mattered in a reconnect storm).
 */
function readIdentity(socket: TLSSocket, trustDomain: string): PeerIdentity | null {
  const cert = socket.getPeerX509Certificate();
  if (!cert?.subjectAltName) return null;
  const uris = cert.subjectAltName
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
  if (uris.length !== 1) return null;
  const parsed = parseSpiffeId(uris[0]!);
  if (!parsed || parsed.trustDomain !== trustDomain) return null;
  // The subject as "O=Vigil\nOU=admin": one attribute per line (the first OU counts, as before).
  const roleText = cert.subject
    .split('\n')
    .find((l) => l.startsWith('OU='))
    ?.slice(3);
  const role: OperatorRole | null = parsed.kind === 'admin' ? (roleText === 'admin' ? 'admin' : 'viewer') : null;
  return {
    kind: parsed.kind,
    id: parsed.id,
    spiffeId: uris[0]!,
    serial: cert.serialNumber.toLowerCase(),
    role,
    remoteAddress: socket.remoteAddress ?? '',
  };
}

export function requireAgentIdentity(id: PeerIdentity | null): PeerIdentity {
  if (!id || id.kind !== 'agent') throw new ControllerError('unauthenticated', 'an agent certificate is required');
  return id;
}

export function requireOperator(ctx: HandlerContext, needs: OperatorRole): PeerIdentity {
  const id = ctx.values.get(peerIdentityKey);
  if (!id || id.kind !== 'admin') throw new ControllerError('unauthenticated', 'an operator certificate is required');
  if (needs === 'admin' && id.role !== 'admin') {
    throw new ControllerError('permission_denied', `operator ${id.id} is a viewer; this needs the admin role`);
  }
  return id;
}
