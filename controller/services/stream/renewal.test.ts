import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createCa, createCertificateAuthority, createCsr, generateKeyPair } from '../../../pki/index.js';
import { testDatabaseKinds, type TestDatabase } from '../../../test/support/databases.js';
import { ControllerError } from '../../errors.js';
import { createIssuer, type Issuer } from '../../identity/issuer.js';
import { createAgentStore, createCertificateStore, type AgentStore, type CertificateStore } from '../../store/index.js';
import type { PeerIdentity } from '../peer-identity.js';
import { createStreamRenewal, type RenewalDeps } from './renewal.js';

const HOUR = 3_600_000;
const start = new Date('2026-06-01T00:00:00Z').getTime();

describe('renewal over a stream', () => {
  let csrPem: string;
  let ca: ReturnType<typeof createCertificateAuthority>;
  before(async () => {
    ca = createCertificateAuthority(await createCa({ trustDomain: 'renew.test' }), { trustDomain: 'renew.test' });
    const keys = await generateKeyPair();
    csrPem = createCsr(keys.privateKeyPem, keys.publicKeyPem, 'ignored');
  });

  for (const kind of testDatabaseKinds()) {
    describe(`on ${kind.name}`, () => {
      let db: TestDatabase;
      let agents: AgentStore;
      let certificates: CertificateStore;
      let issuer: Issuer;
      let now = start;
      let n = 0;
      /** An enrolled agent whose current certificate runs 10 h from `start`, and its stream's peer. */
      const streamOf = async (): Promise<PeerIdentity> => {
        const id = `renew-${++n}`;
        const serial = `5${n.toString(16).padStart(31, '0')}`;
        await agents.create({ id, hostname: 'h', tokenId: 't', labels: {} });
        await certificates.record({ serial, agentId: id, subject: `spiffe://renew.test/agent/${id}`, keyFingerprint: 'sha256:00', tokenId: 't', notBefore: new Date(start), notAfter: new Date(start + 10 * HOUR) });
        return { kind: 'agent', id, spiffeId: `spiffe://renew.test/agent/${id}`, serial, role: null, remoteAddress: '' };
      };
      const deps = (): RenewalDeps => ({ agents, issuer, clock: () => new Date(now) });
      const refusedWith = (code: string, text: RegExp) => (e: unknown) => e instanceof ControllerError && e.code === code && text.test(e.message);
      before(async () => {
        db = await kind.open();
        agents = createAgentStore(db.sql, () => new Date(now));
        certificates = createCertificateStore(db.sql, () => new Date(now));
        issuer = createIssuer({ ca, certificates, agentCertLifetimeMs: 10 * HOUR, operatorCertLifetimeMs: HOUR });
      });
      after(async () => {
        await db.drop();
      });

      it('issues and records a new certificate for the same agent, once per stream', async () => {
        const peer = await streamOf();
        now = start + 8 * HOUR;
        const renew = createStreamRenewal(peer, deps());
        const issued = await renew(csrPem);
        assert.equal((await certificates.find(issued.serial))?.agentId, peer.id);
        await assert.rejects(renew(csrPem), refusedWith('failed_precondition', /one renewal per stream/));
        // A new stream (the agent reconnected) may renew again.
        assert.ok(await createStreamRenewal(peer, deps())(csrPem));
      });

      it('refuses before half the lifetime, and counts no renewal for it', async () => {
        const peer = await streamOf();
        now = start + 4 * HOUR;
        const renew = createStreamRenewal(peer, deps());
        await assert.rejects(renew(csrPem), refusedWith('failed_precondition', /too early/));
        now = start + 6 * HOUR;
        assert.ok(await renew(csrPem));
      });

      it('refuses a revoked agent with the revocation error', async () => {
        const peer = await streamOf();
        now = start + 8 * HOUR;
        const renew = createStreamRenewal(peer, deps());
        await agents.revoke(peer.id, 'decommissioned');
        await assert.rejects(renew(csrPem), refusedWith('permission_denied', new RegExp(`agent ${peer.id} was revoked: decommissioned; enrol it again`)));
      });
    });
  }
});
