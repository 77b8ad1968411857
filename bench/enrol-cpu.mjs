#!/usr/bin/env node
// CPU per enrolment on the controller (issue 16, part 5), measured with process.cpuUsage (user +
// system, this process only) over --n sequential operations after a warm-up, in four parts:
//   csr      verifyCsr: the CSR check the enrol service makes (the request's DER outline read in
//            pki/csr.ts, the key handed to OpenSSL, key size, signature verified by OpenSSL)
//   issue    the CA signing an agent certificate (ca.issueClient: forge builds it from the key's
//            canonical SPKI, node:crypto signs)
//   enrol    the whole Enroll request through the enrol service: the failure limiter's read, token,
//            CSR check, agent row, certificate issued and recorded, in one transaction (PGlite in
//            this process, or the Postgres at DATABASE_URL: then the server's own CPU is not
//            counted here; 6 round trips to it). Not in it: Connect, HTTP/2 and TLS (the fleet
//            benchmark's phase g has those, bench/fleet-scale.mjs)
//   sign     the signing step alone, on the same TBSCertificate bytes with the same CA key:
//            node-forge's JavaScript RSA (what the CA used before) against node:crypto
// and, on the agent, createCsr (making the CSR it sends). The CA key is RSA-3072 as `vigil init`
// makes it; agents' keys RSA-2048, --keys of them shared by the --n enrolments.
//
// usage: [DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres] node bench/enrol-cpu.mjs
//          [--n 200] [--keys 4] [--dist DIR]
// --dist DIR: the build to measure (default: this checkout's dist/), e.g. another worktree's dist
//   to compare an older commit in the same way.
// Prints a table on stderr and the figures as one JSON line on stdout.
import { createPrivateKey, sign } from 'node:crypto';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import forge from 'node-forge';
import pino from 'pino';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const N = Number(arg('n', 200));
const KEYS = Number(arg('keys', 4));
const WARM = 5;
const dist = resolve(arg('dist', join(dirname(fileURLToPath(import.meta.url)), '..', 'dist')));
const load = (path) => import(pathToFileURL(join(dist, path)).href);

const { createCa, createCertificateAuthority, createCsr, formatToken, generateKeyPair, generateToken, verifyCsr } = await load('pki/index.js');
const { createCertificateStore, createEnrolFailureStore, createPgliteSql, createPgSql, createTokenStore, migrate } = await load('controller/store/index.js');
const { createIssuer } = await load('controller/identity/issuer.js');
const { createEnrolService } = await load('controller/services/enrol-service.js');
const { createFailureLimiter } = await load('controller/enrol-rate-limit.js');
const { createServerDatabase } = await load('test/support/databases.js');

/** CPU milliseconds per call of f (sync or async) over N calls, after WARM unmeasured ones. */
async function cpuEach(f) {
  for (let i = 0; i < WARM; i++) await f(i);
  const start = process.cpuUsage();
  const wall = performance.now();
  for (let i = 0; i < N; i++) await f(WARM + i);
  const used = process.cpuUsage(start);
  return { cpuMs: (used.user + used.system) / 1000 / N, wallMs: (performance.now() - wall) / N };
}

const HOUR = 3_600_000;
const keys = await Promise.all(Array.from({ length: KEYS }, () => generateKeyPair()));
const material = await createCa({ trustDomain: 'bench.test' });
const ca = createCertificateAuthority(material, { trustDomain: 'bench.test' });

const results = {};
const csrs = [];
results.createCsr = await cpuEach((i) => {
  const k = keys[i % KEYS];
  csrs[i] = createCsr(k.privateKeyPem, k.publicKeyPem, `host-${i}`);
});
results.csr = await cpuEach((i) => verifyCsr(csrs[i]));
const issued = [];
results.issue = await cpuEach((i) => {
  issued[i] = ca.issueClient({ publicKeyPem: keys[i % KEYS].publicKeyPem, spiffeId: `spiffe://bench.test/agent/a${i}`, lifetimeMs: 24 * HOUR });
});

// The signing step alone, both ways, over the TBS bytes of the certificates just issued.
const tbsOf = issued.map((c) => forge.pki.certificateFromPem(c.certPem));
const caKey = createPrivateKey(material.keyPem);
const forgeCaKey = forge.pki.privateKeyFromPem(caKey.export({ type: 'pkcs1', format: 'pem' }).toString());
results.signForge = await cpuEach((i) => {
  const md = forge.md.sha256.create();
  md.update(forge.asn1.toDer(tbsOf[i].tbsCertificate).getBytes());
  forgeCaKey.sign(md);
});
results.signNode = await cpuEach((i) => sign('sha256', Buffer.from(forge.asn1.toDer(tbsOf[i].tbsCertificate).getBytes(), 'binary'), caKey));

// The whole request through the enrol service, on a fresh database.
const adminUrl = process.env.DATABASE_URL;
const server = adminUrl ? await createServerDatabase(adminUrl) : undefined;
const sql = server ? createPgSql(server.url) : await createPgliteSql();
try {
  await migrate(sql);
  const clock = () => new Date();
  const token = generateToken();
  await createTokenStore(sql, clock).create({ token, ttlMs: HOUR, uses: N + WARM, createdBy: 'bench' });
  const issuer = createIssuer({ ca, certificates: createCertificateStore(sql, clock), agentCertLifetimeMs: 24 * HOUR, operatorCertLifetimeMs: 24 * HOUR });
  const service = createEnrolService({
    sql,
    ca,
    issuer,
    clock,
    logger: pino({ level: 'silent' }),
    connectAddress: () => '127.0.0.1:8443',
    // The limiter reads the failures table on every request, as the controller's does (older builds
    // counted in memory and take no store).
    failures: createFailureLimiter({ maxFailures: 10, windowMs: 60_000, clock, store: createEnrolFailureStore?.(sql) }),
  });
  const ctx = { values: { get: () => '127.0.0.1' } };
  const req = { token: formatToken(token), hostname: '' };
  // enrol(req, remote) since session 13; older builds take connect-node's (req, ctx).
  const enrolOne = service.enrol ? (r) => service.enrol(r, '127.0.0.1') : (r) => service.enroll(r, ctx);
  results.enrol = await cpuEach((i) => enrolOne({ ...req, csrPem: csrs[i], hostname: `host-${i}` }));
} finally {
  await sql.close();
  await server?.drop();
}

const round = (x) => Math.round(x * 100) / 100;
const figures = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { cpuMs: round(v.cpuMs), wallMs: round(v.wallMs) }]));
const rows = [
  ['agent: createCsr', 'createCsr'],
  ['controller: CSR check (verifyCsr)', 'csr'],
  ['controller: issue (ca.issueClient)', 'issue'],
  ['controller: whole Enroll request', 'enrol'],
  ['signing step: node-forge JS RSA', 'signForge'],
  ['signing step: node:crypto', 'signNode'],
];
process.stderr.write(`enrol CPU, ${N} each after ${WARM} warm-up; dist ${dist}; store ${adminUrl ? 'postgres (server CPU not counted)' : 'pglite (in this process)'}; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
for (const [label, key] of rows) process.stderr.write(`  ${label.padEnd(40)} ${figures[key].cpuMs.toFixed(2).padStart(8)} ms CPU  ${figures[key].wallMs.toFixed(2).padStart(8)} ms wall\n`);
process.stdout.write(`${JSON.stringify({ n: N, store: adminUrl ? 'postgres' : 'pglite', dist, figures })}\n`);
