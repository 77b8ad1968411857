import { readFile } from 'node:fs/promises';
import { createCsr, generateKeyPair, writePublicFile, writeSecretFile } from '../../../pki/index.js';
import { vigilHome, type ControllerInfo } from '../../home.js';
import type { CliContext } from '../cli-context.js';
import { table, ts } from '../output.js';

export function registerAdmins(ctx: CliContext): void {
  const admins = ctx.program.command('admins').description('operator credentials');
  admins
    .command('add')
    .description('issue an operator certificate (key made here) and write a VIGIL_HOME for that operator into --out')
    .argument('<name>', 'operator name: spiffe://<trust-domain>/admin/<name>')
    .requiredOption('--role <role>', 'admin (may change things) or viewer (reads everything, changes nothing)')
    .requiredOption('--out <dir>', 'directory to write the new operator home into (must not hold one)')
    .action((name: string, o: { role: string; out: string }) =>
      ctx.withClient(async (c) => {
        const keys = await generateKeyPair();
        const res = await c.addAdmin({ name, role: o.role, csrPem: createCsr(keys.privateKeyPem, keys.publicKeyPem, name) });
        const out = vigilHome(o.out);
        await writeSecretFile(out.operatorKey, keys.privateKeyPem);
        await writePublicFile(out.operatorCert, res.certificatePem);
        await writePublicFile(out.caCert, res.caPem);
        const info = JSON.parse(await readFile(ctx.home().controllerInfo, 'utf8')) as ControllerInfo;
        await writePublicFile(out.controllerInfo, `${JSON.stringify({ ...info, address: await ctx.controllerAddress() }, null, 2)}\n`);
        if (ctx.json()) ctx.printJson({ spiffeId: res.spiffeId, role: o.role, home: out.dir });
        else ctx.print(`${res.spiffeId} (${o.role}): VIGIL_HOME=${out.dir} vigilctl ...`);
      }),
    );

  admins
    .command('ls')
    .description('list operator certificates: name, role, status (active, expired, revoked), expiry')
    .action(() =>
      ctx.withClient(async (c) => {
        const res = await c.listAdmins({});
        const rows = res.admins.map((a) => ({ name: a.name, spiffeId: a.spiffeId, role: a.role || null, status: a.status, serial: a.serial, issuedAt: ts(a.issuedAt), notAfter: ts(a.notAfter), revokedAt: ts(a.revokedAt) }));
        if (ctx.json()) return ctx.printJson(rows);
        ctx.print(table(['NAME', 'ROLE', 'STATUS', 'ISSUED', 'EXPIRES', 'SERIAL'], rows.map((r) => [r.name, r.role ?? '-', r.status, r.issuedAt ?? '-', r.notAfter ?? '-', r.serial])));
      }),
    );

  admins
    .command('revoke')
    .description('revoke an operator: every admin call with that identity is refused from now on')
    .argument('<name>', 'operator name')
    .option('--reason <text>', 'recorded in the audit log', 'revoked by an operator')
    .action((name: string, o: { reason: string }) =>
      ctx.withClient(async (c) => {
        await c.revokeAdmin({ name, reason: o.reason });
        if (ctx.json()) ctx.printJson({ revoked: name });
        else ctx.print(`operator ${name} revoked`);
      }),
    );
}
