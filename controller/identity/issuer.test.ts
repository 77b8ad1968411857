import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { adminSpiffeId, agentSpiffeId, createCa, createCertificateAuthority, generateKeyPair, spkiFingerprint, type CertificateAuthority } from '../../pki/index.js';
import { testDatabaseKinds, type TestDatabase } from '../../test/support/databases.js';
import { createCertificateStore, type CertificateStore } from '../store/index.js';
import { createIssuer, type Issuer } from './issuer.js';

const HOUR = 3_600_000;
const sanOf = (pem: string) => new X509Certificate(pem).subjectAltName?.replace(/^URI:/, '');

describe('issuer', () => {
  let ca: CertificateAuthority;
  let publicKeyPem: string;
  before(async () => {
    const material = await createCa({ trustDomain: 'issuer.test' });
    ca = createCertificateAuthority(material, { trustDomain: 'issuer.test' });
    publicKeyPem = (await generateKeyPair()).publicKeyPem;
  });

  for (const kind of testDatabaseKinds()) {
    describe(`on ${kind.name}`, () => {
      let db: TestDatabase;
      let certificates: CertificateStore;
      let issuer: Issuer;
      before(async () => {
        db = await kind.open();
        certificates = createCertificateStore(db.sql, () => new Date());
        issuer = createIssuer({ ca, certificates, agentCertLifetimeMs: 2 * HOUR, operatorCertLifetimeMs: 48 * HOUR });
      });
      after(async () => {
        await db.drop();
      });

      it('an agent certificate names the agent, lives the agent lifetime and is recorded before it is handed out', async () => {
        const issued = await issuer.issueAgent({ agentId: 'agent-1', publicKeyPem, tokenId: 'tok1' });
        assert.equal(sanOf(issued.certPem), agentSpiffeId('issuer.test', 'agent-1'));
        assert.ok(new X509Certificate(issued.certPem).checkIssued(new X509Certificate(ca.certPem)));
        assert.ok(Math.abs(issued.notAfter.getTime() - Date.now() - 2 * HOUR) < 60_000);
        const rec = await certificates.find(issued.serial);
        assert.deepEqual(
          rec && { agentId: rec.agentId, subject: rec.subject, notAfter: rec.notAfter.getTime(), revokedAt: rec.revokedAt },
          { agentId: 'agent-1', subject: agentSpiffeId('issuer.test', 'agent-1'), notAfter: issued.notAfter.getTime(), revokedAt: null },
        );
        const row = await db.sql.query('select key_fingerprint, token_id, kind from certificates where serial = $1', [issued.serial]);
        assert.deepEqual(row, [{ key_fingerprint: spkiFingerprint(publicKeyPem), token_id: 'tok1', kind: 'agent' }]);
      });

      it('an operator certificate carries its role and is listed among the operators', async () => {
        const issued = await issuer.issueOperator({ name: 'carol', publicKeyPem, role: 'viewer' });
        assert.equal(issued.spiffeId, adminSpiffeId('issuer.test', 'carol'));
        assert.equal(sanOf(issued.certPem), issued.spiffeId);
        assert.match(new X509Certificate(issued.certPem).subject, /OU=viewer/);
        assert.ok(Math.abs(issued.notAfter.getTime() - Date.now() - 48 * HOUR) < 60_000);
        const listed = (await certificates.listOperators()).filter((c) => c.serial === issued.serial);
        assert.deepEqual(listed.map((c) => [c.subject, c.role, c.revokedAt]), [[issued.spiffeId, 'viewer', null]]);
      });

      it("records init's operator certificate once, with the role its subject says", async () => {
        const made = ca.issueClient({ publicKeyPem, spiffeId: adminSpiffeId('issuer.test', 'admin'), lifetimeMs: 24 * HOUR, role: 'admin' });
        await issuer.recordOperator(made.certPem);
        await issuer.recordOperator(made.certPem);
        const listed = (await certificates.listOperators()).filter((c) => c.serial === made.serial.toLowerCase());
        assert.deepEqual(listed.map((c) => [c.subject, c.role]), [[adminSpiffeId('issuer.test', 'admin'), 'admin']]);
        assert.equal(await certificates.revokeOperator(adminSpiffeId('issuer.test', 'admin')), 1, 'revocable like any other');
      });

      it('recordingIn a transaction: a rolled-back enrolment leaves no certificate behind', async () => {
        let serial = '';
        await assert.rejects(
          db.sql.transaction(async (tx) => {
            const issued = await issuer.recordingIn(createCertificateStore(tx, () => new Date())).issueAgent({ agentId: 'agent-2', publicKeyPem, tokenId: null });
            serial = issued.serial;
            assert.ok(await createCertificateStore(tx, () => new Date()).find(serial), 'visible inside the transaction');
            throw new Error('enrolment failed later');
          }),
          /enrolment failed later/,
        );
        assert.ok(serial);
        assert.equal(await certificates.find(serial), null);
      });
    });
  }
});
