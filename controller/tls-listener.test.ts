import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { connect as tlsConnect } from 'node:tls';
import { describe, it } from 'node:test';
import { createCa, createCertificateAuthority, generateKeyPair, generateP256KeyPair } from '../pki/index.js';
import { listenTls } from './tls-listener.js';

describe('TLS listener', () => {
  it('closes with a connection that never finished its handshake still open', { timeout: 20_000 }, async () => {
    const material = await createCa({ trustDomain: 'vigil.test' });
    const ca = createCertificateAuthority(material, { trustDomain: 'vigil.test' });
    const key = await generateKeyPair();
    const server = ca.issueServer({ publicKeyPem: key.publicKeyPem, names: ['127.0.0.1'] });
    const listener = await listenTls({ at: { host: '127.0.0.1', port: 0 }, keyPem: key.privateKeyPem, certChainPem: server.certPem + material.certPem, onStream: () => undefined });
    // A peer that connects and says nothing: no TLS, no HTTP/2 session.
    const idle = connect(listener.port, '127.0.0.1');
    await once(idle, 'connect');
    // Until the server has it (its own count of connections).
    for (;;) {
      const n = await new Promise<number>((resolve, reject) => listener.server.getConnections((err, count) => (err ? reject(err) : resolve(count))));
      if (n > 0) break;
      await new Promise((r) => setImmediate(r));
    }
    const closed = once(idle, 'close');
    await listener.close();
    await closed;
  });

  for (const [kind, makeKey, keyType] of [
    ['an ECDSA P-256 key (homes made since session 13)', generateP256KeyPair, 'ec'],
    ['an RSA key (homes made before)', generateKeyPair, 'rsa'],
  ] as const) {
    it(`serves TLS 1.3 over h2 with ${kind}, a client checking the server by the CA alone`, { timeout: 20_000 }, async () => {
      const material = await createCa({ trustDomain: 'vigil.test' });
      const ca = createCertificateAuthority(material, { trustDomain: 'vigil.test' });
      const key = await makeKey();
      const server = ca.issueServer({ publicKeyPem: key.publicKeyPem, names: ['127.0.0.1'] });
      const listener = await listenTls({ at: { host: '127.0.0.1', port: 0 }, keyPem: key.privateKeyPem, certChainPem: server.certPem + material.certPem, onStream: () => undefined });
      try {
        const socket = tlsConnect({ host: '127.0.0.1', port: listener.port, ca: material.certPem, ALPNProtocols: ['h2'] });
        socket.on('error', () => undefined);
        await once(socket, 'secureConnect');
        assert.equal(socket.authorized, true, String(socket.authorizationError));
        assert.equal(socket.getProtocol(), 'TLSv1.3');
        assert.equal(socket.alpnProtocol, 'h2');
        assert.equal(socket.getPeerX509Certificate()?.publicKey.asymmetricKeyType, keyType);
        socket.destroy();
      } finally {
        await listener.close();
      }
    });
  }
});
