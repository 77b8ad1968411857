// Agent certificates for simulated agents, issued straight by the controller home's CA (no token,
// no Enroll RPC: 10,000 enrolments through the controller would take longer than the benchmark).
//
// The certificate has the fields pki/certificate-authority.ts issueClient gives an agent (O=Vigil,
// basicConstraints CA:false, keyUsage digitalSignature+keyEncipherment, extKeyUsage clientAuth, the
// agent's SPIFFE ID as the only, critical URI SAN, subject and authority key identifiers); it is
// built with node-forge like the controller's and signed with node:crypto (OpenSSL), because
// node-forge's JavaScript RSA takes ~0.2 CPU-s per signature. The rows the controller checks on
// every stream (agents, certificates) are written with the controller's own stores, as the enrol
// service writes them. Also the bare reference for enrolment CPU: signCpuMs() times this signer.
import { createPrivateKey, createPublicKey, randomBytes, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import forge from 'node-forge';
import { distImport } from './dist.mjs';

const { agentSpiffeId, spkiFingerprint } = await distImport('pki/index.js');

const { pki, asn1 } = forge;

function randomSerial() {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x3f) | 0x40; // as pki/certificate-authority.ts: positive, no leading zero nibble
  return bytes.toString('hex');
}

/**
 * A signer for agent certificates with the home's CA (ca.pem, ca.key unencrypted, as `vigilctl
 * init` leaves them without VIGIL_CA_PASSPHRASE).
 */
export function createAgentSigner({ caCertPem, caKeyPem, trustDomain, publicKeyPem, lifetimeMs = 24 * 3_600_000 }) {
  const caCert = pki.certificateFromPem(caCertPem);
  const caKey = createPrivateKey(caKeyPem);
  const caKeyId = caCert.generateSubjectKeyIdentifier().getBytes();
  const forgePublicKey = pki.publicKeyFromPem(createPublicKey(publicKeyPem).export({ type: 'spki', format: 'pem' }).toString());
  const keyFingerprint = spkiFingerprint(publicKeyPem);
  return {
    keyFingerprint,
    issue(agentId) {
      const spiffeId = agentSpiffeId(trustDomain, agentId);
      const cert = pki.createCertificate();
      cert.publicKey = forgePublicKey;
      cert.serialNumber = randomSerial();
      const start = Date.now();
      cert.validity.notBefore = new Date(start - Math.min(5 * 60_000, Math.floor(lifetimeMs / 10)));
      cert.validity.notAfter = new Date(start + lifetimeMs);
      cert.setSubject([{ name: 'organizationName', value: 'Vigil' }]);
      cert.setIssuer(caCert.subject.attributes);
      cert.setExtensions([
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', clientAuth: true },
        { name: 'subjectAltName', critical: true, altNames: [{ type: 6, value: spiffeId }] },
        { name: 'subjectKeyIdentifier' },
        { name: 'authorityKeyIdentifier', keyIdentifier: caKeyId },
      ]);
      cert.siginfo.algorithmOid = cert.signatureOid = pki.oids.sha256WithRSAEncryption;
      cert.tbsCertificate = pki.getTBSCertificate(cert);
      const tbs = Buffer.from(asn1.toDer(cert.tbsCertificate).getBytes(), 'binary');
      cert.signature = sign('sha256', tbs, caKey).toString('binary');
      return {
        agentId,
        spiffeId,
        certPem: pki.certificateToPem(cert),
        serial: cert.serialNumber,
        notBefore: cert.validity.notBefore.toISOString(),
        notAfter: cert.validity.notAfter.toISOString(),
      };
    },
  };
}

/** Issues n agent certificates with fresh agent ids. */
export function issueAgents(signer, n, hostPrefix) {
  const out = [];
  for (let i = 0; i < n; i++) out.push({ ...signer.issue(randomUUID()), hostname: `${hostPrefix}-${i}` });
  return out;
}

/** The signer for a controller home directory. */
export function signerForHome(home, publicKeyPem) {
  const info = JSON.parse(readFileSync(`${home}/controller.json`, 'utf8'));
  return createAgentSigner({ caCertPem: readFileSync(`${home}/ca.pem`, 'utf8'), caKeyPem: readFileSync(`${home}/ca.key`, 'utf8'), trustDomain: info.trustDomain, publicKeyPem });
}

/**
 * Records issued agents as enrolled: an agents row and a certificates row each, through the
 * controller's stores (createAgentStore().create, createCertificateStore().record), the way the
 * enrol service does, `concurrency` at a time.
 */
export async function registerAgents(sql, agents, { keyFingerprint, concurrency = 8 }) {
  const { createAgentStore, createCertificateStore, systemClock } = await distImport('controller/store/index.js');
  const agentStore = createAgentStore(sql, systemClock);
  const certStore = createCertificateStore(sql, systemClock);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < agents.length; i = next++) {
        const a = agents[i];
        await agentStore.create({ id: a.agentId, hostname: a.hostname, tokenId: 'fleet-bench', labels: {} });
        await certStore.record({
          serial: a.serial,
          agentId: a.agentId,
          subject: a.spiffeId,
          keyFingerprint,
          tokenId: 'fleet-bench',
          notBefore: new Date(a.notBefore),
          notAfter: new Date(a.notAfter),
        });
      }
    }),
  );
}

/** CPU milliseconds per certificate for this signer (the bare reference for enrolment signing). */
export function signCpuMs(signer, n = 50) {
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) signer.issue(randomUUID());
  const u = process.cpuUsage(t0);
  return (u.user + u.system) / 1000 / n;
}
