import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { agentSpiffeId, createCa, createCertificateAuthority, generateKeyPair, writePublicFile, writeSecretFile } from '../pki/index.js';
import { AgentError } from './errors.js';
import { loadCredentials, renewalTime, saveRenewed } from './credentials.js';
import { stateDir } from './state-dir.js';

describe('agent credentials', () => {
  const root = mkdtempSync(join(tmpdir(), 'vigil-cred-'));
  let issue: () => Promise<{ keyPem: string; certPem: string }>;
  let caPem: string;

  before(async () => {
    const material = await createCa({ trustDomain: 't' });
    caPem = material.certPem;
    const ca = createCertificateAuthority(material, { trustDomain: 't' });
    issue = async () => {
      const k = await generateKeyPair();
      return { keyPem: k.privateKeyPem, certPem: ca.issueClient({ publicKeyPem: k.publicKeyPem, spiffeId: agentSpiffeId('t', 'a'), lifetimeMs: 3_600_000 }).certPem };
    };
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  async function freshDir(name: string) {
    const dir = stateDir(join(root, name));
    const c = await issue();
    await writeSecretFile(dir.key, c.keyPem);
    await writePublicFile(dir.cert, c.certPem);
    await writePublicFile(dir.ca, caPem);
    return dir;
  }

  it('swaps key and certificate on renewal, key 0600', async () => {
    const dir = await freshDir('swap');
    const next = await issue();
    await saveRenewed(dir, next.keyPem, next.certPem);
    const loaded = await loadCredentials(dir, new Date());
    assert.equal(loaded.certPem, next.certPem);
    assert.equal(loaded.keyPem, next.keyPem);
    assert.equal(statSync(dir.key).mode & 0o777, 0o600);
  });

  it('refuses a renewed certificate that does not match the new key', async () => {
    const dir = await freshDir('mismatch');
    const a = await issue();
    const b = await issue();
    await assert.rejects(saveRenewed(dir, a.keyPem, b.certPem), AgentError);
  });

  it('finishes a swap cut between renaming the key and the certificate (crash)', async () => {
    const dir = await freshDir('crash');
    const next = await issue();
    // What the disk holds after a crash right after the key's rename.
    writeFileSync(`${dir.cert}.next`, next.certPem);
    writeFileSync(`${dir.key}.next`, next.keyPem, { mode: 0o600 });
    renameSync(`${dir.key}.next`, dir.key);
    const loaded = await loadCredentials(dir, new Date());
    assert.equal(loaded.certPem, next.certPem, 'the pair on disk belongs together');
  });

  it('drops a half-written swap that never renamed anything', async () => {
    const dir = await freshDir('half');
    const before = readFileSync(dir.cert, 'utf8');
    const next = await issue();
    writeFileSync(`${dir.cert}.next`, next.certPem);
    copyFileSync(dir.key, `${dir.key}.next`); // not the new key: an inconsistent leftover
    const loaded = await loadCredentials(dir, new Date());
    assert.equal(loaded.certPem, before);
  });

  it('renews at a point between 70 % and 90 % of the lifetime', () => {
    const c = { notBefore: new Date(0), notAfter: new Date(1000) };
    assert.equal(renewalTime(c, () => 0).getTime(), 700);
    assert.equal(renewalTime(c, () => 1).getTime(), 900);
  });
});
