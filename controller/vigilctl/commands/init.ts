import { ControllerError } from '../../errors.js';
import { initHome } from '../../init.js';
import { parseHostPort } from '../../listen-address.js';
import type { CliContext } from '../cli-context.js';

export function registerInit(ctx: CliContext): void {
  ctx.program
    .command('init')
    .description('create the CA, the controller certificate and the first operator credential under VIGIL_HOME')
    .option('--server-name <names>', 'comma-separated DNS names and IPs for the controller certificate', 'localhost,127.0.0.1')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'vigil.local')
    .option('--address <host:port>', 'where vigilctl reaches the controller', '127.0.0.1:8443')
    .option('--enrol-address <host:port>', 'where agents reach the enrolment listener (goes into join strings)', '127.0.0.1:8444')
    .action(async (o: { serverName: string; trustDomain: string; address: string; enrolAddress: string }) => {
      parseHostPort(o.address, '--address');
      parseHostPort(o.enrolAddress, '--enrol-address');
      if (!/^[a-z0-9.-]{1,253}$/.test(o.trustDomain)) throw new ControllerError('invalid_argument', '--trust-domain: lower-case letters, digits, dots and dashes only');
      const names = o.serverName.split(',').map((s) => s.trim()).filter(Boolean);
      if (!names.length) throw new ControllerError('invalid_argument', '--server-name: give at least one name');
      const h = ctx.home();
      const res = await initHome(h, {
        serverNames: names,
        trustDomain: o.trustDomain,
        address: o.address,
        enrolAddress: o.enrolAddress,
        operatorName: 'admin',
        operatorLifetimeMs: 365 * 86_400_000,
        ...(process.env.VIGIL_CA_PASSPHRASE ? { caPassphrase: process.env.VIGIL_CA_PASSPHRASE } : {}),
      });
      if (ctx.json()) ctx.printJson({ home: h.dir, createdCa: res.createdCa, pin: res.pin });
      else ctx.print(`${res.createdCa ? 'created' : 'kept existing'} CA in ${h.dir} (pin ${res.pin}); server certificate for ${names.join(', ')}`);
    });
}
