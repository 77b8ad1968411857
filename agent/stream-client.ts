import { create } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { createCsr, generateKeyPair, type KeyPairPem } from '../pki/index.js';
import { renewalTime, type Credentials } from './credentials.js';
import { AgentError } from './errors.js';
import type { Logger } from 'pino';
import { deltaToPb, policyFromPb } from '../proto/convert.js';
import { ConnectRequestSchema, type ConnectResponse, type SyncRepairs, type SyncVerdicts } from '../proto/gen/vigil/v1/agent_pb.js';
import { createRuleMatcher } from '../core/policy-match.js';
import { scanReportToPb } from '../proto/scan-summary.js';
import { syncEntriesToPb, syncRangesToPb, syncRepairsFromPb, syncVerdictsFromPb } from '../proto/sync-messages.js';
import type { Change, LocalStore } from './store/local-store.js';
import type { Monitor, ScanSummary } from './monitor.js';
import { agentStatusToPb } from './status-report.js';
import { reconcile, SyncMessageTooLarge, type SyncChannel } from './sync/reconciler.js';
import { AGENT_BATCH_BYTES, deltaSizeBound } from '../proto/wire-limits.js';
import { createAgentClient, type ConnectCall } from './transport/agent-client.js';
import { createExchanges } from './transport/exchanges.js';

export interface StreamClientOptions {
  readonly address: string;
  /** Loaded before every connection (the certificate changes on renewal). */
  readonly credentials: () => Promise<Credentials>;
  /** Stores a renewed key and certificate. */
  readonly saveRenewed: (keyPem: string, certPem: string) => Promise<void>;
  readonly clock: () => Date;
  readonly hostname: string;
  readonly agentVersion: string;
  readonly store: LocalStore;
  readonly monitor: Monitor;
  readonly logger: Logger;
  /** Deltas per batch. */
  readonly batchSize?: number;
  /** Most deltas sent and not yet acked. */
  readonly maxInFlight?: number;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** How often the agent reconciles with the controller besides on every connect (default 10 min). */
  readonly reconcileEveryMs?: number;
}

export interface StreamClient {
  /**
   * Runs until stop(): connects, streams the queue, applies what comes down, renews the
   * certificate, reconnects with backoff. Rejects (AgentError) when going on is pointless: the
   * agent was revoked, or its certificate expired.
   */
  run(): Promise<void>;
  stop(): void;
}

const PERMISSION_DENIED = 7;

/**
 * A status message as grpc-js hands it over: percent-encoded where the server encoded it (gRPC
 * spec), with other `%` signs left as written. Each run of %XX escapes is decoded on its own.
 */
export function grpcText(text: string): string {
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}
const INVALID_ARGUMENT = 3;
const RESOURCE_EXHAUSTED = 8;
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The agent's side of Connect. The queue is the truth: on every (re)connect the controller says
 * what it has committed, the agent drops that from its queue and sends the rest in order. A delta
 * leaves the queue only when an ack after commit covers it.
 */
export function createStreamClient(opts: StreamClientOptions): StreamClient {
  const log = opts.logger.child({ component: 'stream' });
  const batchSize = opts.batchSize ?? 500;
  const maxInFlight = opts.maxInFlight ?? 5000;
  const backoff = opts.backoff ?? { initialMs: 250, maxMs: 15_000 };
  const reconcileEveryMs = opts.reconcileEveryMs ?? 600_000;
  let stopped = false;
  let current: ConnectCall | null = null;
  let wakeSleep: (() => void) | null = null;
  let reconnectNow = false;

  async function session(): Promise<void> {
    const creds = await opts.credentials();
    const client = createAgentClient({ address: opts.address, caPem: creds.caPem, certPem: creds.certPem, keyPem: creds.keyPem });
    try {
      await streamWith(client, creds);
    } finally {
      client.close();
    }
  }

  function streamWith(client: ReturnType<typeof createAgentClient>, creds: Credentials): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const call = client.connect();
      current = call;
      let renewTimer: NodeJS.Timeout | undefined;
      let renewing: KeyPairPem | null = null;

      const scheduleRenewal = (retryInMs?: number) => {
        const at = renewalTime(creds).getTime();
        const wait = retryInMs ?? Math.min(Math.max(0, at - opts.clock().getTime()), MAX_TIMER_MS);
        renewTimer = setTimeout(() => {
          void (async () => {
            renewing = await generateKeyPair();
            log.info({ serial: creds.serial, notAfter: creds.notAfter.toISOString() }, 'renewing the certificate');
            send({ msg: { case: 'renew', value: { csrPem: createCsr(renewing.privateKeyPem, renewing.publicKeyPem, opts.hostname) } } });
          })().catch((err: unknown) => {
            log.error({ err }, 'renewal failed; retrying in 30 s');
            scheduleRenewal(30_000);
          });
        }, wait);
        renewTimer.unref();
      };
      let welcomed = false;
      let sentUpTo = 0;
      let ackedUpTo = 0;
      let ended = false;
      const send = (msg: Parameters<typeof create<typeof ConnectRequestSchema>>[1]) => {
        // A scan that finishes after this stream ended reports on nothing; the next stream's
        // welcome and the queue carry what matters (the deltas).
        if (!ended) call.write(create(ConnectRequestSchema, msg));
      };

      // Waiting for every recorded delta to be on the wire (reconciliation's precondition).
      const sentWaiters: (() => void)[] = [];
      const allSent = () => welcomed && sentUpTo >= opts.store.lastSeq();
      const pump = () => {
        if (!welcomed) return;
        while (sentUpTo - ackedUpTo < maxInFlight) {
          const pending = opts.store.pending(sentUpTo, batchSize);
          if (!pending.length) break;
          // Cut by bytes too: the controller reads at most MAX_AGENT_MESSAGE_BYTES a message.
          let bytes = 0;
          let n = 0;
          while (n < pending.length && (n === 0 || bytes + deltaSizeBound(pending[n]!) <= AGENT_BATCH_BYTES)) bytes += deltaSizeBound(pending[n++]!);
          const batch = pending.slice(0, n);
          send({ msg: { case: 'deltas', value: { deltas: batch.map(deltaToPb) } } });
          sentUpTo = batch[batch.length - 1]!.seq;
        }
        if (allSent() || ended) for (const w of sentWaiters.splice(0)) w();
      };

      let statusSent = '';
      const sendStatus = () => {
        const status = agentStatusToPb(opts.store, opts.monitor.scheduledOnly());
        const key = JSON.stringify(status, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
        if (key === statusSent) return;
        statusSent = key;
        send({ msg: { case: 'status', value: status } });
      };
      let resyncShown = opts.store.resync() !== null;
      const onQueued = () => {
        pump();
        const resync = opts.store.resync() !== null;
        if (resync !== resyncShown) {
          resyncShown = resync;
          if (resync) log.warn({ queueBytes: opts.store.queueBytes(), limit: opts.store.queueLimitBytes() }, 'queue full: recording changes locally, will reconcile once delivered');
          sendStatus();
        }
      };
      opts.monitor.on('queued', onQueued);
      const onStatus = () => sendStatus();
      opts.monitor.on('status', onStatus);

      // Reconciliation (docs/delivery.md): each exchange goes out once every delta recorded
      // before it has been sent, built in the same tick, so both sides compare the same prefix.
      const verdicts = createExchanges<SyncVerdicts>();
      const repairs = createExchanges<SyncRepairs>();
      const whenSent = () => new Promise<void>((resolve) => sentWaiters.push(resolve));
      const ready = async () => {
        while (!allSent()) {
          if (ended) throw new Error('the stream ended');
          await whenSent();
        }
        if (ended) throw new Error('the stream ended');
      };
      const channel: SyncChannel = {
        async compareRanges(build) {
          await ready();
          const ex = verdicts.open();
          send({ msg: { case: 'syncRanges', value: syncRangesToPb(ex.id, build()) } });
          return syncVerdictsFromPb(await ex.answer);
        },
        async compareEntries(build) {
          await ready();
          const leaves = build();
          const bytes = leaves.reduce((n, l) => n + 48 + l.entries.reduce((m, e) => m + 24 + e.path.length, 0), 0);
          if (bytes > AGENT_BATCH_BYTES) throw new SyncMessageTooLarge(`${leaves.length} leaves take about ${bytes} bytes`);
          const ex = repairs.open();
          send({ msg: { case: 'syncEntries', value: syncEntriesToPb(ex.id, leaves) } });
          return syncRepairsFromPb(await ex.answer);
        },
      };
      let reconciling = false;
      let again: string | null = null;
      const startReconcile = (why: string) => {
        if (!welcomed || ended) return;
        if (reconciling) {
          again = why; // once this one is done: it may have started before what asks now
          return;
        }
        if (opts.store.resync()) {
          if (opts.store.queueLength() > 0) return; // once the queue is delivered
          opts.store.clearResync();
          resyncShown = false;
          log.info('queue delivered; queueing again and reconciling what it could not hold');
        }
        reconciling = true;
        const policy = opts.monitor.policy;
        const match = createRuleMatcher(policy?.rules ?? []);
        const started = Date.now();
        reconcile(channel, {
          store: opts.store,
          record: (changes: Change[]) => {
            opts.store.record(changes);
            onQueued();
          },
          covers: (path) => match(path) !== null,
          clock: opts.clock,
          logger: log,
        })
          .then((r) => {
            opts.store.setLastReconcile({ at: opts.clock(), repairs: r.repairs });
            log.info({ why, repairs: r.repairs, ranges: r.ranges, leaves: r.leaves, ms: Date.now() - started }, 'reconciled with the controller');
            sendStatus();
          })
          .catch((err: unknown) => {
            if (!ended) log.warn({ err, why }, 'reconciliation failed; it runs again on the next connect');
          })
          .finally(() => {
            reconciling = false;
            const next = again;
            again = null;
            if (next) startReconcile(next);
          });
      };
      const reconcileTimer = setInterval(() => startReconcile('periodic'), reconcileEveryMs);
      reconcileTimer.unref();

      const report = (commandId: string, s: ScanSummary) =>
        send({ msg: { case: 'scanReport', value: scanReportToPb({ commandId: commandId || null, policyVersion: s.policyVersion, summary: s }) } });

      const handle = (m: ConnectResponse) => {
        switch (m.msg.case) {
          case 'welcome': {
            const committed = Number(m.msg.value.committedSeq);
            if (committed > opts.store.lastSeq()) {
              // The controller has committed numbers this agent has not used yet: its local state
              // was rolled back (snapshot or backup restored). Number what is queued after the
              // controller's, so nothing is mistaken for a resend, and re-scan to catch up.
              const moved = opts.store.renumberAfter(committed);
              log.warn({ committedSeq: committed, moved }, 'local state is older than the controller\'s (restored?); renumbered the queue and re-scanning');
              opts.monitor.rescan(false).catch((err: unknown) => log.error({ err }, 're-scan after renumbering failed'));
            }
            const dropped = opts.store.ack(committed);
            welcomed = true;
            sentUpTo = ackedUpTo = committed;
            log.info({ agentId: m.msg.value.agentId, committedSeq: committed, dropped, queued: opts.store.queueLength() }, 'connected to controller');
            scheduleRenewal();
            pump();
            sendStatus();
            startReconcile('connect');
            return;
          }
          case 'renewed': {
            const key = renewing;
            const renewed = m.msg.value;
            if (!key) return;
            renewing = null;
            opts
              .saveRenewed(key.privateKeyPem, renewed.certificatePem)
              .then(() => {
                log.info({ notAfter: renewed.notAfter ? timestampDate(renewed.notAfter).toISOString() : null }, 'certificate renewed; reconnecting with it');
                reconnectNow = true;
                call.cancel();
              })
              .catch((err: unknown) => {
                log.error({ err }, 'storing the renewed certificate failed; keeping the current one and retrying in 30 s');
                scheduleRenewal(30_000);
              });
            return;
          }
          case 'ack': {
            const upTo = Number(m.msg.value.upToSeq);
            // Refused for their content: accounted for by the controller and acked with the rest
            // (docs/delivery.md, "Refused deltas"); never sent again.
            for (const r of m.msg.value.refused) log.error({ seq: Number(r.seq), code: r.code, field: r.field, reason: r.reason }, 'the controller refused a delta; it is recorded there as refused');
            opts.store.ack(upTo);
            ackedUpTo = Math.max(ackedUpTo, upTo);
            pump();
            if (opts.store.queueLength() === 0) {
              sendStatus(); // the queue is delivered: vigilctl agents show says so
              if (opts.store.resync()) startReconcile('resync');
            }
            return;
          }
          case 'policy': {
            const policy = policyFromPb(m.msg.value);
            const applied = Math.max(opts.monitor.policy?.version ?? 0, 0);
            if (policy.version < applied) return; // an older version from a lagging replica
            if (opts.store.policy()?.version === policy.version && opts.monitor.policy?.version === policy.version) return;
            log.info({ version: policy.version }, 'policy received');
            opts.monitor
              .applyPolicy(policy)
              .then((s) => report('', s))
              .catch((err: unknown) => log.error({ err }, 'applying policy failed'));
            return;
          }
          case 'syncVerdicts':
            if (!verdicts.settle(m.msg.value.exchangeId, m.msg.value)) log.warn({ exchangeId: m.msg.value.exchangeId }, 'verdicts for an unknown exchange ignored');
            return;
          case 'syncRepairs':
            if (!repairs.settle(m.msg.value.exchangeId, m.msg.value)) log.warn({ exchangeId: m.msg.value.exchangeId }, 'repairs for an unknown exchange ignored');
            return;
          case 'command': {
            const cmd = m.msg.value;
            if (cmd.kind.case === 'rescan') {
              const fullHash = cmd.kind.value.fullHash;
              log.info({ commandId: cmd.id, fullHash }, 'rescan requested');
              opts.monitor
                .rescan(fullHash)
                .then((s) => report(cmd.id, s))
                .catch((err: unknown) => log.error({ err, commandId: cmd.id }, 'rescan failed'));
            } else {
              log.warn({ commandId: cmd.id }, 'unknown command ignored');
            }
            return;
          }
          default:
            return;
        }
      };

      const finish = (err?: Error) => {
        ended = true;
        clearTimeout(renewTimer);
        clearInterval(reconcileTimer);
        opts.monitor.off('queued', onQueued);
        opts.monitor.off('status', onStatus);
        for (const w of sentWaiters.splice(0)) w();
        const gone = new Error('the stream ended');
        verdicts.failAll(gone);
        repairs.failAll(gone);
        current = null;
        if (err) reject(err);
        else resolve();
      };
      call.on('data', handle);
      call.once('error', (err) => finish(err));
      call.once('end', () => finish());
      send({ msg: { case: 'hello', value: { hostname: opts.hostname, agentVersion: opts.agentVersion, policyVersion: BigInt(opts.store.policy()?.version ?? 0) } } });
    });
  }

  return {
    async run() {
      let delay = backoff.initialMs;
      while (!stopped) {
        const started = Date.now();
        let refused = false;
        try {
          await session();
          if (!stopped) log.warn('controller closed the stream; reconnecting');
        } catch (err) {
          if (stopped) break;
          if (err instanceof AgentError) throw err; // e.g. the certificate expired: enrol again
          const e = err as { code?: number; details?: string; message: string };
          if (e.code === PERMISSION_DENIED) {
            throw new AgentError('revoked', `the controller refused this agent: ${grpcText(e.details ?? e.message)}`, { cause: err });
          }
          if (e.code === INVALID_ARGUMENT || e.code === RESOURCE_EXHAUSTED) {
            // The controller refused what this agent sent as a whole (docs/delivery.md): resending
            // it at once would be refused again. Said loudly, retried at the slowest pace (the
            // controller may be upgraded meanwhile); `vigilctl agents show` says "delivery blocked".
            log.error({ reason: grpcText(e.details ?? e.message), pendingFrom: opts.store.pending(0, 1)[0]?.seq ?? null }, 'the controller refused a message from this agent: delivery is blocked; retrying slowly');
            delay = backoff.maxMs;
            refused = true;
          } else if (!reconnectNow) log.warn({ grpcCode: e.code, reason: grpcText(e.details ?? e.message) }, 'stream to controller failed; reconnecting');
        }
        if (stopped) break;
        if (reconnectNow) {
          reconnectNow = false;
          delay = backoff.initialMs;
          continue;
        }
        if (Date.now() - started > 30_000 && !refused) delay = backoff.initialMs;
        const wait = delay / 2 + Math.random() * (delay / 2);
        delay = Math.min(delay * 2, backoff.maxMs);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait);
          wakeSleep = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wakeSleep = null;
      }
    },
    stop() {
      stopped = true;
      current?.cancel();
      wakeSleep?.();
    },
  };
}
