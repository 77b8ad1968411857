import { X509Certificate } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { connect as tlsConnect, type DetailedPeerCertificate } from 'node:tls';
import type { Logger } from 'pino';
import { createCsr, generateKeyPair, parseJoinString, spkiPin, writePublicFile, writeSecretFile } from '../pki/index.js';
import { AgentError } from './errors.js';
import { stateDir, type AgentIdentity } from './state-dir.js';
import { agentErrorFromGrpc } from './transport/grpc-errors.js';
import { createAgentClient } from './transport/agent-client.js';
import { stat } from 'node:fs/promises';

function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

function derToPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64.endsWith('\n') ? b64 : `${b64}\n`}-----END CERTIFICATE-----\n`;
}

/**
 * First contact: opens a TLS connection without trusting anything yet, reads the certificate chain
 * the controller presents and returns the CA whose public key matches one of the pins. Nothing is
 * sent on this connection but the TLS handshake; the token goes out only afterwards, on a
 * connection verified against that CA.
 */
export async function discoverPinnedCa(address: string, pins: readonly string[], timeoutMs = 10_000): Promise<string> {
  const { host, port } = splitHostPort(address);
  const chain = await new Promise<DetailedPeerCertificate>((resolve, reject) => {
    const socket = tlsConnect({ host, port, rejectUnauthorized: false, minVersion: 'TLSv1.3', ALPNProtocols: ['h2'], servername: /^[\d.:]+$/.test(host) ? '' : host });
    const timer = setTimeout(() => socket.destroy(new Error(`no TLS handshake with ${address} within ${timeoutMs} ms`)), timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const cert = socket.getPeerCertificate(true);
      socket.destroy();
      resolve(cert);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new AgentError('controller_unreachable', `cannot reach the controller at ${address}: ${err.message}`, { cause: err }));
    });
  });
  const leaf = new X509Certificate(chain.raw);
  const seen = new Set<string>();
  for (let c: DetailedPeerCertificate | undefined = chain; c && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    const pem = derToPem(c.raw);
    if (pins.includes(spkiPin(pem))) {
      const ca = new X509Certificate(pem);
      if (!ca.ca || !leaf.verify(ca.publicKey)) continue;
      return pem;
    }
  }
  throw new AgentError(
    'pin_mismatch',
    `the controller at ${address} did not present a CA matching the join string's pin; nothing was sent (wrong address, or someone in the middle)`,
  );
}

export interface EnrolOptions {
  readonly joinString: string;
  readonly stateDir: string;
  readonly logger: Logger;
  readonly hostname?: string;
}

/** Enrols this host: checks the CA pin, makes a key here, sends token + CSR, stores the result. */
export async function enrol(opts: EnrolOptions): Promise<AgentIdentity> {
  const join = parseJoinString(opts.joinString);
  const dir = stateDir(opts.stateDir);
  if (await stat(dir.identity).then(() => true, () => false)) {
    throw new AgentError('already_enrolled', `${dir.dir} already holds an enrolment; use another --state-dir or remove it`);
  }
  const log = opts.logger.child({ component: 'enrol', controller: join.address, tokenId: join.token.id });
  const caPem = await discoverPinnedCa(join.address, join.pins);
  log.info({ pin: spkiPin(caPem) }, 'controller CA matches the pin');
  const keys = await generateKeyPair();
  const host = opts.hostname ?? osHostname();
  const client = createAgentClient({ address: join.address, caPem });
  let res;
  try {
    res = await client.enroll({
      token: `${join.token.id}.${join.token.secret}`,
      csrPem: createCsr(keys.privateKeyPem, keys.publicKeyPem, host),
      hostname: host,
    });
  } catch (err) {
    // Refused (a bad token, a rate limit...) or not reached at all: said apart (grpc-errors.ts).
    throw agentErrorFromGrpc(err, 'enrol');
  } finally {
    client.close();
  }
  const issued = new X509Certificate(res.certificatePem);
  if (!issued.verify(new X509Certificate(caPem).publicKey)) throw new AgentError('enrol_refused', 'the issued certificate is not signed by the pinned CA');
  const identity: AgentIdentity = { agentId: res.agentId, trustDomain: res.trustDomain, controller: res.connectAddress };
  await writeSecretFile(dir.key, keys.privateKeyPem);
  await writePublicFile(dir.cert, res.certificatePem);
  await writePublicFile(dir.ca, caPem);
  await writePublicFile(dir.identity, `${JSON.stringify(identity, null, 2)}\n`);
  log.info({ agentId: identity.agentId, notAfter: issued.validTo }, 'enrolled');
  return identity;
}
