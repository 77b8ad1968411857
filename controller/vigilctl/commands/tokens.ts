import { parseDuration } from '../../config.js';
import { ControllerError } from '../../errors.js';
import type { CliContext } from '../cli-context.js';
import { table, ts } from '../output.js';

function collectLabel(value: string, acc: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq < 1) throw new ControllerError('invalid_argument', `--label: expected key=value, got "${value}"`);
  return { ...acc, [value.slice(0, eq)]: value.slice(eq + 1) };
}

const labelText = (l: Record<string, string>) => Object.entries(l).map(([k, v]) => `${k}=${v}`).join(',') || '-';

export function registerTokens(ctx: CliContext): void {
  const tokens = ctx.program.command('tokens').description('enrolment tokens');
  tokens
    .command('create')
    .description('create an enrolment token: the join string for `vigil-agent enrol` on stdout, the token id on stderr')
    .option('--ttl <duration>', 'how long the token is valid', '1h')
    .option('--uses <n>', 'how many agents may enrol with it', '1')
    .option('--label <key=value>', 'label the agents enrolled with it inherit (repeatable); policy rule selectors match labels', collectLabel, {})
    .action((o: { ttl: string; uses: string; label: Record<string, string> }) =>
      ctx.withClient(async (c) => {
        const ttlMs = parseDuration(o.ttl, '--ttl');
        const uses = Number(o.uses);
        if (!Number.isInteger(uses) || uses < 1) throw new ControllerError('invalid_argument', '--uses: a whole number of at least 1');
        const res = await c.createToken({ ttlSeconds: Math.ceil(ttlMs / 1000), uses, labels: o.label });
        if (ctx.json()) return ctx.printJson({ joinString: res.joinString, tokenId: res.tokenId, expiresAt: ts(res.expiresAt) });
        ctx.note(`token ${res.tokenId}: ${uses} use(s), expires ${ts(res.expiresAt)} (vigilctl tokens revoke ${res.tokenId})`);
        ctx.print(res.joinString);
      }),
    );

  tokens
    .command('ls')
    .description('list enrolment tokens (never their secrets)')
    .action(() =>
      ctx.withClient(async (c) => {
        const res = await c.listTokens({});
        const now = Date.now();
        const rows = res.tokens.map((t) => {
          const expiresAt = ts(t.expiresAt)!;
          const state = t.revokedAt ? 'revoked' : Date.parse(expiresAt) <= now ? 'expired' : t.uses >= t.usesAllowed ? 'used up' : 'valid';
          return { id: t.id, state, uses: t.uses, usesAllowed: t.usesAllowed, expiresAt, labels: { ...t.labels }, createdBy: t.createdBy, createdAt: ts(t.createdAt), revokedAt: ts(t.revokedAt) };
        });
        if (ctx.json()) return ctx.printJson(rows);
        ctx.print(table(['ID', 'STATE', 'USES', 'EXPIRES', 'LABELS', 'CREATED BY'], rows.map((t) => [t.id, t.state, `${t.uses}/${t.usesAllowed}`, t.expiresAt, labelText(t.labels), t.createdBy])));
      }),
    );

  tokens
    .command('revoke')
    .description('revoke an enrolment token so that no further agent can enrol with it')
    .argument('<id>', 'token id (the part before the dot)')
    .action((id: string) =>
      ctx.withClient(async (c) => {
        await c.revokeToken({ id });
        if (ctx.json()) ctx.printJson({ revoked: id });
        else ctx.print(`token ${id} revoked`);
      }),
    );
}
