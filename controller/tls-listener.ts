import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { HostPort } from './listen-address.js';
import type { StreamHandler } from './request-from-stream.js';

export interface TlsListenerOptions {
  readonly at: HostPort;
  readonly keyPem: string;
  /** Server certificate followed by the CA (the chain enrolling agents pin). */
  readonly certChainPem: string;
  /** Set: client certificates signed by this CA are required (mutual TLS). */
  readonly clientCaPem?: string;
  /** Every HTTP/2 stream (request-from-stream.ts serves request handlers from here). */
  readonly onStream: StreamHandler;
}

export interface TlsListener {
  readonly server: Http2SecureServer;
  readonly port: number;
  close(): Promise<void>;
}

/** An HTTP/2 listener: TLS 1.3 only, ALPN h2 only, optionally requiring client certificates. */
export async function listenTls(opts: TlsListenerOptions): Promise<TlsListener> {
  const server = createSecureServer(
    {
      key: opts.keyPem,
      cert: opts.certChainPem,
      minVersion: 'TLSv1.3',
      allowHTTP1: false,
      ...(opts.clientCaPem ? { ca: opts.clientCaPem, requestCert: true, rejectUnauthorized: true } : {}),
    },
  );
  server.on('stream', opts.onStream);
  const sessions = new Set<import('node:http2').ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  // Connections that never became a session (a handshake left half-done by a peer) would hold
  // close() open forever: they are ended with the rest.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A fleet reconnecting at once (a controller restarted) overflows the default backlog of 511:
    // dropped SYNs wait for the kernel's retry, seconds later. The kernel caps it at somaxconn.
    server.listen({ port: opts.at.port, host: opts.at.host, backlog: 8192 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
        for (const socket of sockets) socket.destroy();
      }),
  };
}
