import { readFile } from 'node:fs/promises';
import { stringify as toYaml } from 'yaml';
import { policyFromPb, policyToPb } from '../../../proto/convert.js';
import { parsePolicyYaml, policyToDocument } from '../../../core/policy-schema.js';
import type { CliContext } from '../cli-context.js';

export function registerPolicies(ctx: CliContext): void {
  const policies = ctx.program.command('policies').description('the fleet policy');
  policies
    .command('apply')
    .description('store a new policy version from a YAML file and push it to every connected agent')
    .requiredOption('-f, --file <path>', 'policy YAML file')
    .action((o: { file: string }) =>
      ctx.withClient(async (c) => {
        const parsed = parsePolicyYaml(await readFile(o.file, 'utf8'), o.file);
        const res = await c.applyPolicy({ policy: policyToPb({ version: 0, ...parsed }) });
        if (ctx.json()) ctx.printJson({ version: Number(res.version), pushedTo: res.pushedTo });
        else ctx.print(`policy v${res.version} applied; pushed to ${res.pushedTo} connected agent(s)`);
      }),
    );
  policies
    .command('show')
    .description('print the current policy')
    .action(() =>
      ctx.withClient(async (c) => {
        const res = await c.getPolicy({});
        const policy = res.policy ? policyFromPb(res.policy) : null;
        if (ctx.json()) return ctx.printJson(policy);
        if (!policy) return ctx.print('no policy applied yet');
        ctx.print(`# version ${policy.version}\n${toYaml(policyToDocument(policy))}`.trimEnd());
      }),
    );
}
