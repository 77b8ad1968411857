import { constants as cryptoConstants } from 'node:crypto';
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
      // h2 only, chosen by a callback: Node copies a fixed ALPN list into every socket (2 KB of
      // pinned buffer pool a connection, measured at 10,000 idle streams).
      ALPNProtocols: undefined,
      ALPNCallback: ({ protocols }: { protocols: string[] }) => (protocols.includes('h2') ? 'h2' : undefined),
      // No session tickets: neither grpc-js nor vigilctl resumes sessions, and the ticket state
      // costs ~4 KB a connection.
      secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
      ...(opts.clientCaPem ? { ca: opts.clientCaPem, requestCert: true, rejectUnauthorized: true } : {}),
    },
  );
  server.on('stream', opts.onStream);
  // Every connection, so that close() ends them: one that never became a session (a handshake left
  // half-done by a peer) would otherwise hold close() open forever; destroying a socket ends its
  // session too. One shared listener, no closure per connection.
  const sockets = new Set<Socket>();
  function forget(this: Socket) {
    sockets.delete(this);
  }
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', forget);
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
        for (const socket of sockets) socket.destroy();
      }),
  };
}
