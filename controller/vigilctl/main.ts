#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { ConnectError } from '@connectrpc/connect';
import { Command, Option } from 'commander';
import { policyFromPb, policyToPb } from '../../proto/convert.js';
import { parseDuration } from '../config.js';
import { ControllerError } from '../errors.js';
import { resolveHomeDir, vigilHome, type ControllerInfo } from '../home.js';
import { createCsr, generateKeyPair, writePublicFile, writeSecretFile } from '../../pki/index.js';
import { initHome } from '../init.js';
import { parseHostPort } from '../listen-address.js';
import { parsePolicyYaml, policyToDocument } from '../../proto/policy-schema.js';
import { stringify as toYaml } from 'yaml';
import { createAdminClient, type AdminClient } from './admin-client.js';
import type { CommandStatus } from '../../proto/gen/vigil/v1/admin_pb.js';
import { agentDetailJson, agentDetailText, eventJson, fileJson, modeString, table, ts } from './output.js';

interface GlobalOpts {
  json?: boolean;
  controller?: string;
}

const program = new Command('vigilctl')
  .description('Operate a Vigil fleet through the controller admin API')
  .option('--json', 'print JSON instead of tables')
  .option('--controller <host:port>', 'controller admin address (default: the one recorded by init)');

const home = () => vigilHome(resolveHomeDir());
const globals = (): GlobalOpts => program.opts<GlobalOpts>();
const print = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
const printJson = (v: unknown): void => print(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2));

async function withClient<T>(fn: (c: Awaited<ReturnType<typeof createAdminClient>>['client']) => Promise<T>): Promise<T> {
  const { client, close } = await createAdminClient(home(), globals().controller);
  try {
    return await fn(client);
  } finally {
    close();
  }
}

program
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
    const h = home();
    const res = await initHome(h, {
      serverNames: names,
      trustDomain: o.trustDomain,
      address: o.address,
      enrolAddress: o.enrolAddress,
      operatorName: 'admin',
      operatorLifetimeMs: 365 * 86_400_000,
      ...(process.env.VIGIL_CA_PASSPHRASE ? { caPassphrase: process.env.VIGIL_CA_PASSPHRASE } : {}),
    });
    if (globals().json) printJson({ home: h.dir, createdCa: res.createdCa, pin: res.pin });
    else print(`${res.createdCa ? 'created' : 'kept existing'} CA in ${h.dir} (pin ${res.pin}); server certificate for ${names.join(', ')}`);
  });

const agents = program.command('agents').description('enrolled agents');
agents
  .command('ls')
  .description('list enrolled agents')
  .action(() =>
    withClient(async (c) => {
      const res = await c.listAgents({});
      if (globals().json) {
        printJson(
          res.agents.map((a) => ({
            id: a.id,
            hostname: a.hostname,
            connected: a.connected,
            enrolledAt: ts(a.enrolledAt),
            lastSeenAt: ts(a.lastSeenAt),
            lastSeq: Number(a.lastSeq),
            refreshedCount: Number(a.refreshedCount),
            resyncNeeded: a.delivery?.resyncNeeded ?? false,
            gapsTotal: Number(a.delivery?.gapsTotal ?? 0),
            policyVersion: Number(a.policyVersion),
            status: a.status,
            labels: a.labels,
            certNotAfter: ts(a.certNotAfter),
            revokedAt: ts(a.revokedAt),
          })),
        );
        return;
      }
      print(
        table(
          ['ID', 'HOSTNAME', 'STATUS', 'LAST SEEN', 'LAST SEQ', 'POLICY', 'CERT EXPIRES', 'LABELS'],
          res.agents.map((a) => [
            a.id,
            a.hostname,
            a.status === 'certificate_expired' ? 'certificate expired: enrol again' : a.status,
            ts(a.lastSeenAt) ?? '-',
            String(a.lastSeq),
            `v${a.policyVersion}`,
            ts(a.certNotAfter) ?? '-',
            Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-',
          ]),
        ),
      );
    }),
  );

agents
  .command('show')
  .description('one agent in detail: sequence accounting, queue, resync flag, reconciliation, gap records, scheduled-only directories')
  .argument('<agent-id>')
  .action((id: string) =>
    withClient(async (c) => {
      const res = await c.getAgent({ agentId: id });
      const j = agentDetailJson(res.agent!, Number(res.eventsStored), res.refused);
      if (globals().json) printJson(j);
      else print(agentDetailText(j));
    }),
  );

program
  .command('files')
  .description("the controller's current state of one agent's files (what reconciliation keeps equal to the agent's baseline), in path order")
  .requiredOption('--agent <id>', 'the agent')
  .action((o: { agent: string }) =>
    withClient(async (c) => {
      const json = globals().json;
      if (json) process.stdout.write('[');
      else print(['MODE', 'SIZE', 'SHA256', 'PATH'].join('\t'));
      let after: Uint8Array = new Uint8Array(0);
      let first = true;
      // A page at a time: an agent may hold millions of paths.
      for (;;) {
        const res = await c.listFiles({ agentId: o.agent, after, limit: 5000 });
        for (const f of res.files) {
          const j = fileJson(f);
          if (json) process.stdout.write(`${first ? '\n' : ',\n'}${JSON.stringify(j)}`);
          else print([modeString(j.mode), String(j.size), j.error ? `!${j.error}` : (j.sha256?.slice(0, 12) ?? '-'), j.path].join('\t'));
          first = false;
        }
        if (res.files.length < 5000) break;
        after = res.files[res.files.length - 1]!.path;
      }
      if (json) process.stdout.write('\n]\n');
    }),
  );

program
  .command('events')
  .description('file change history, oldest first')
  .option('--agent <id>', 'only this agent')
  .option('--path <glob>', 'only paths matching this glob (picomatch)')
  .option('--since <duration>', 'only changes detected in the last DURATION (30s, 15m, 1h, 7d)')
  .option('--limit <n>', 'at most N events (the newest N)', '1000')
  .action((o: { agent?: string; path?: string; since?: string; limit: string }) =>
    withClient(async (c) => {
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new ControllerError('invalid_argument', '--limit: a whole number of at least 1');
      const since = o.since ? new Date(Date.now() - parseDuration(o.since, '--since')) : undefined;
      const res = await c.listEvents({
        agentId: o.agent ?? '',
        pathGlob: o.path ?? '',
        ...(since ? { since: timestampFromDate(since) } : {}),
        limit,
      });
      const events = res.events.map(eventJson);
      if (globals().json) return printJson(events);
      print(
        table(
          ['DETECTED', 'AGENT', 'SEQ', 'KIND', 'MODE', 'SHA256', 'PATH'],
          events.map((e) => [e.detectedAt, e.agentId.slice(0, 8), String(e.seq), e.kind, modeString(e.mode), e.error ? `!${e.error}` : (e.sha256?.slice(0, 12) ?? '-'), e.path]),
        ),
      );
    }),
  );

agents
  .command('revoke')
  .description('revoke an agent: its live stream is cut on every controller, new connections and renewals are refused')
  .argument('<id>', 'agent id')
  .option('--reason <text>', 'recorded with the revocation and in the audit log', 'revoked by an operator')
  .action((id: string, o: { reason: string }) =>
    withClient(async (c) => {
      await c.revokeAgent({ agentId: id, reason: o.reason });
      if (globals().json) printJson({ revoked: id });
      else print(`agent ${id} revoked`);
    }),
  );

const tokens = program.command('tokens').description('enrolment tokens');
tokens
  .command('create')
  .description('create an enrolment token; prints the join string for `vigil-agent enrol`')
  .option('--ttl <duration>', 'how long the token is valid', '1h')
  .option('--uses <n>', 'how many agents may enrol with it', '1')
  .option('--label <key=value>', 'label the agents enrolled with it inherit (repeatable); policy rule selectors match labels', collectLabel, {})
  .action((o: { ttl: string; uses: string; label: Record<string, string> }) =>
    withClient(async (c) => {
      const ttlMs = parseDuration(o.ttl, '--ttl');
      const uses = Number(o.uses);
      if (!Number.isInteger(uses) || uses < 1) throw new ControllerError('invalid_argument', '--uses: a whole number of at least 1');
      const res = await c.createToken({ ttlSeconds: Math.ceil(ttlMs / 1000), uses, labels: o.label });
      if (globals().json) printJson({ joinString: res.joinString, tokenId: res.tokenId, expiresAt: ts(res.expiresAt) });
      else print(res.joinString);
    }),
  );

tokens
  .command('ls')
  .description('list enrolment tokens (never their secrets)')
  .action(() =>
    withClient(async (c) => {
      const res = await c.listTokens({});
      const now = Date.now();
      const rows = res.tokens.map((t) => {
        const expiresAt = ts(t.expiresAt)!;
        const state = t.revokedAt ? 'revoked' : Date.parse(expiresAt) <= now ? 'expired' : t.uses >= t.usesAllowed ? 'used up' : 'valid';
        return { id: t.id, state, uses: t.uses, usesAllowed: t.usesAllowed, expiresAt, createdBy: t.createdBy, createdAt: ts(t.createdAt), revokedAt: ts(t.revokedAt) };
      });
      if (globals().json) return printJson(rows);
      print(table(['ID', 'STATE', 'USES', 'EXPIRES', 'CREATED BY'], rows.map((t) => [t.id, t.state, `${t.uses}/${t.usesAllowed}`, t.expiresAt, t.createdBy])));
    }),
  );
tokens
  .command('revoke')
  .description('revoke an enrolment token so that no further agent can enrol with it')
  .argument('<id>', 'token id (the part before the dot)')
  .action((id: string) =>
    withClient(async (c) => {
      await c.revokeToken({ id });
      if (globals().json) printJson({ revoked: id });
      else print(`token ${id} revoked`);
    }),
  );

const admins = program.command('admins').description('operator credentials');
admins
  .command('add')
  .description('issue an operator certificate (key made here) and write a VIGIL_HOME for that operator into --out')
  .argument('<name>', 'operator name: spiffe://<trust-domain>/admin/<name>')
  .requiredOption('--role <role>', 'admin (may change things) or viewer (reads everything, changes nothing)')
  .requiredOption('--out <dir>', 'directory to write the new operator home into (must not hold one)')
  .action((name: string, o: { role: string; out: string }) =>
    withClient(async (c) => {
      const keys = await generateKeyPair();
      const res = await c.addAdmin({ name, role: o.role, csrPem: createCsr(keys.privateKeyPem, keys.publicKeyPem, name) });
      const out = vigilHome(o.out);
      await writeSecretFile(out.operatorKey, keys.privateKeyPem);
      await writePublicFile(out.operatorCert, res.certificatePem);
      await writePublicFile(out.caCert, res.caPem);
      const info = JSON.parse(await readFile(home().controllerInfo, 'utf8')) as ControllerInfo;
      await writePublicFile(out.controllerInfo, `${JSON.stringify({ ...info, address: globals().controller ?? info.address }, null, 2)}\n`);
      if (globals().json) printJson({ spiffeId: res.spiffeId, role: o.role, home: out.dir });
      else print(`${res.spiffeId} (${o.role}): VIGIL_HOME=${out.dir} vigilctl ...`);
    }),
  );

admins
  .command('revoke')
  .description('revoke an operator: every admin call with that identity is refused from now on')
  .argument('<name>', 'operator name')
  .option('--reason <text>', 'recorded in the audit log', 'revoked by an operator')
  .action((name: string, o: { reason: string }) =>
    withClient(async (c) => {
      await c.revokeAdmin({ name, reason: o.reason });
      if (globals().json) printJson({ revoked: name });
      else print(`operator ${name} revoked`);
    }),
  );

program
  .command('audit')
  .description('who changed what, when: tokens, policies, revocations, rescans, operators')
  .option('--limit <n>', 'the newest N entries', '1000')
  .action((o: { limit: string }) =>
    withClient(async (c) => {
      const res = await c.listAudit({ limit: Number(o.limit) || 1000 });
      const rows = res.entries.map((e) => ({ at: ts(e.at), actor: e.actor, action: e.action, target: e.target, details: JSON.parse(e.detailsJson || '{}') as unknown }));
      if (globals().json) return printJson(rows);
      print(table(['WHEN', 'WHO', 'WHAT', 'TARGET', 'DETAILS'], rows.map((r) => [r.at ?? '-', r.actor, r.action, r.target, JSON.stringify(r.details)])));
    }),
  );

const policies = program.command('policies').description('the fleet policy');
policies
  .command('apply')
  .description('store a new policy version from a YAML file and push it to every connected agent')
  .requiredOption('-f, --file <path>', 'policy YAML file')
  .action((o: { file: string }) =>
    withClient(async (c) => {
      const parsed = parsePolicyYaml(await readFile(o.file, 'utf8'), o.file);
      const res = await c.applyPolicy({ policy: policyToPb({ version: 0, ...parsed }) });
      if (globals().json) printJson({ version: Number(res.version), pushedTo: res.pushedTo });
      else print(`policy v${res.version} applied; pushed to ${res.pushedTo} connected agent(s)`);
    }),
  );
policies
  .command('show')
  .description('print the current policy')
  .action(() =>
    withClient(async (c) => {
      const res = await c.getPolicy({});
      const policy = res.policy ? policyFromPb(res.policy) : null;
      if (globals().json) return printJson(policy);
      if (!policy) return print('no policy applied yet');
      print(`# version ${policy.version}\n${toYaml(policyToDocument(policy))}`.trimEnd());
    }),
  );

program
  .command('rescan')
  .description('make agents re-scan now and report what they found')
  .option('--agent <id>', 'this agent')
  .option('--all', 'every connected agent')
  .option('--full-hash', 'hash every file again instead of trusting unchanged stat data')
  .option('--wait [duration]', 'wait for the agents\' scan reports (default up to 5m)')
  .action((o: { agent?: string; all?: boolean; fullHash?: boolean; wait?: string | boolean }) =>
    withClient(async (c) => {
      if (Boolean(o.agent) === Boolean(o.all)) throw new ControllerError('invalid_argument', 'give exactly one of --agent ID and --all');
      const res = await c.rescan({ agentId: o.agent ?? '', all: Boolean(o.all), fullHash: Boolean(o.fullHash) });
      const sent = res.targets.filter((t) => t.delivered);
      let reports = new Map<string, CommandStatus>();
      if (o.wait && sent.length) {
        const timeoutMs = typeof o.wait === 'string' ? parseDuration(o.wait, '--wait') : 300_000;
        reports = await waitForCommands(c, sent.map((t) => t.commandId), timeoutMs);
      }
      const rows = res.targets.map((t) => {
        const r = reports.get(t.commandId)?.scan;
        return {
          agentId: t.agentId,
          commandId: t.commandId,
          delivered: t.delivered,
          ...(o.wait ? { completed: Boolean(r), filesScanned: r ? Number(r.filesScanned) : null, changes: r ? Number(r.changes) : null, errors: r ? Number(r.errors) : null } : {}),
        };
      });
      if (globals().json) printJson(rows);
      else if (!rows.length) print('no connected agents');
      else
        for (const t of rows) {
          if (!t.delivered) print(`${t.agentId}: not connected; not sent`);
          else if (!o.wait) print(`${t.agentId}: rescan sent (command ${t.commandId})`);
          else if (!t.completed) print(`${t.agentId}: no report yet (command ${t.commandId})`);
          else print(`${t.agentId}: scanned ${t.filesScanned} paths, ${t.changes} change(s), ${t.errors} error(s)`);
        }
      if (o.wait && rows.some((t) => t.delivered && !t.completed)) process.exitCode = 1;
    }),
  );

async function waitForCommands(c: AdminClient, ids: string[], timeoutMs: number): Promise<Map<string, CommandStatus>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await c.getCommands({ ids });
    const done = new Map(res.commands.filter((x) => x.completedAt).map((x) => [x.id, x]));
    if (done.size === ids.length || Date.now() >= deadline) return done;
    await new Promise((r) => setTimeout(r, 200));
  }
}

program.addOption(new Option('--debug', 'show stack traces').hideHelp());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const msg = err instanceof ConnectError ? `${err.rawMessage} (${codeName(err)})` : err instanceof Error ? err.message : String(err);
  process.stderr.write(`vigilctl: ${msg.split('\n')[0]}\n`);
  if (program.opts().debug && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exitCode = 1;
}

function collectLabel(value: string, acc: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq < 1) throw new ControllerError('invalid_argument', `--label: expected key=value, got "${value}"`);
  return { ...acc, [value.slice(0, eq)]: value.slice(eq + 1) };
}

function codeName(err: ConnectError): string {
  const names: Record<number, string> = { 3: 'invalid argument', 5: 'not found', 7: 'permission denied', 8: 'resource exhausted', 9: 'failed precondition', 14: 'unavailable', 16: 'unauthenticated' };
  return names[err.code] ?? `code ${err.code}`;
}
