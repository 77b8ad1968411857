// A worker process of simulated agents (forked by bench/fleet-scale.mjs, driven over IPC).
//
// Each simulated agent has its own certificate (one key pair shared by all, issued by the home's
// CA: certs.mjs), its own gRPC client (@connectrpc/connect-node, as vigilctl uses, with an HTTP/2
// session manager of its own: its own TCP connection and TLS session; with @grpc/grpc-js, the
// agent's library, the clients spent ~6 ms CPU per connection against ~4.7 ms here, the bare
// server ~2.4 ms: a global subchannel pool compared option by option on every new channel, a TLS
// context per attempt) and its own Connect stream speaking the
// real protocol (proto/vigil/v1/agent.proto, the agent's gRPC framing): hello, then
// the welcome, delta batches and acks; policies and commands are recorded on arrival and answered
// with a ScanReport, as the agent does after its scan. A stream that ends is reopened with the
// agent's backoff (agent/session/stream-client.ts: 250 ms doubling to 15 s, delay/2 + random
// delay/2, reset after a session that lasted 30 s).
//
// Times are `performance.timeOrigin + performance.now()` (ms since the epoch, sub-ms resolution):
// the same clock as the parent's, which starts RPCs and restarts servers on this machine.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { create, toBinary } from '@bufbuild/protobuf';
import { WireType } from '@bufbuild/protobuf/wire';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { issueAgents, signerForHome } from './certs.mjs';
import { distImport } from './dist.mjs';
import { serve } from './ipc.mjs';

const { AgentService, ConnectRequestSchema } = await distImport('proto/gen/vigil/v1/agent_pb.js');
const { ChangeKind, ChangeSource, FileType } = await distImport('proto/gen/vigil/v1/types_pb.js');

const now = () => performance.timeOrigin + performance.now();

let cfg = null; // init()
const agents = [];
const ofRole = (role) => agents.filter((a) => a.role === role);

const hello = (a) => create(ConnectRequestSchema, { msg: { case: 'hello', value: { hostname: a.hostname, agentVersion: 'fleet-bench', policyVersion: BigInt(a.policyVersion) } } });

function send(a, msg) {
  if (a.session && !a.session.ended) a.session.queue.push(msg);
}

/** The ScanReport an agent sends after the scan a policy or a command asked for (a short, jittered "scan"). */
function reportScan(a, commandId, policyVersion) {
  const delay = cfg.reportDelayMs * (0.5 + Math.random());
  setTimeout(() => {
    const at = timestampFromDate(new Date());
    send(a, create(ConnectRequestSchema, { msg: { case: 'scanReport', value: { commandId, policyVersion: BigInt(policyVersion), summary: { filesScanned: 1n, changes: 0n, errors: 0n, startedAt: at, finishedAt: at } } } }));
  }, delay).unref();
}

function onMessage(a, m, t) {
  switch (m.msg.case) {
    case 'welcome':
      a.welcomeAt = t;
      a.welcomes++;
      a.committedSeq = Number(m.msg.value.committedSeq);
      a.session.welcomed = true;
      a.onWelcome?.();
      return;
    case 'ack':
      a.onAck?.(Number(m.msg.value.upToSeq), t);
      return;
    case 'policy': {
      const v = Number(m.msg.value.version);
      if (!a.policyAt.has(v)) a.policyAt.set(v, t);
      if (v > a.policyVersion) {
        a.policyVersion = v;
        reportScan(a, '', v);
      }
      return;
    }
    case 'command':
      a.commandAt.set(m.msg.value.id, t);
      reportScan(a, m.msg.value.id, a.policyVersion);
      return;
    default:
  }
}

/** Messages up one stream, as the async iterable connect-node reads the request stream from. */
function requestQueue() {
  const buf = [];
  let wake = null;
  let done = false;
  return {
    push(m) {
      buf.push(m);
      wake?.();
    },
    end() {
      done = true;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (buf.length) yield buf.shift();
        if (done) return;
        await new Promise((r) => (wake = r));
        wake = null;
      }
    },
  };
}

function open(a) {
  const s = { started: now(), welcomed: false, ended: false, queue: requestQueue(), abort: new AbortController(), sessions: null };
  a.session = s;
  a.attempts++;
  // A session manager of its own: one HTTP/2 connection, one TLS session, for this agent alone.
  // Pings every 30 s, like the agent's keepalive.
  s.sessions = new Http2SessionManager(`https://${a.address}`, { pingIntervalMs: 30_000, pingTimeoutMs: 10_000 }, { secureContext: a.tls });
  const client = createClient(AgentService, createGrpcTransport({ baseUrl: `https://${a.address}`, sessionManager: s.sessions }));
  const end = (err) => {
    if (s.ended) return;
    s.ended = true;
    s.queue.end();
    s.abort.abort();
    s.sessions.abort();
    if (a.session === s) a.session = null;
    if (err && !s.welcomed) a.failures++;
    if (err && s.welcomed) a.lastError = err.message;
    a.onEnd?.();
    if (a.reconnect) scheduleReconnect(a, s);
  };
  s.cancel = () => end(new Error('cancelled'));
  s.queue.push(hello(a));
  (async () => {
    try {
      for await (const m of client.connect(s.queue, { signal: s.abort.signal })) {
        if (s.ended) break;
        onMessage(a, m, now());
      }
      end(null);
    } catch (err) {
      end(err);
    }
  })();
}

function scheduleReconnect(a, s) {
  const { initialMs, maxMs, stableAfterMs } = cfg.backoff;
  if (now() - s.started > stableAfterMs) a.delay = initialMs;
  const d = cfg.jitter === 'full' ? Math.random() * a.delay : a.delay / 2 + (Math.random() * a.delay) / 2;
  a.delay = Math.min(a.delay * 2, maxMs);
  a.timer = setTimeout(() => {
    a.timer = null;
    if (a.reconnect && !a.session) open(a);
  }, d);
}

/** Builds one agent's burst: batches of `batch` deltas after its committed seq, as ConnectRequests. */
function buildBatches(a, events, batch) {
  const out = [];
  const detectedAt = timestampFromDate(new Date());
  let seq = a.committedSeq;
  for (let left = events; left > 0; left -= batch) {
    const deltas = [];
    for (let i = 0; i < Math.min(batch, left); i++) {
      seq++;
      deltas.push({
        seq: BigInt(seq),
        path: Buffer.from(`/srv/app/${a.hostname}/dir${seq % 97}/file-${seq}.conf`),
        kind: ChangeKind.MODIFIED,
        state: { type: FileType.REGULAR, size: BigInt(100 + i), mode: 0o100644, uid: 0, gid: 0, mtimeNs: 1_700_000_000_000_000_000n + BigInt(i), ctimeNs: 1_700_000_000_000_000_000n + BigInt(i), inode: BigInt(seq), nlink: 1, sha256: randomBytes(32) },
        detectedAt,
        source: ChangeSource.REALTIME,
      });
    }
    out.push({ lastSeq: seq, msg: preEncoded(create(ConnectRequestSchema, { msg: { case: 'deltas', value: { deltas } } })) });
  }
  return out;
}

/**
 * The same message, encoded now rather than at send: an empty ConnectRequest carrying the encoded
 * `deltas` field as an unknown field, which protobuf-es writes back verbatim (tag, then the
 * bytes). The bytes on the wire are identical to encoding the message itself; the simulated
 * agents, load generators standing in for other machines, spend their CPU (on the two cores the
 * controller and Postgres are measured on) at set-up instead of during the burst.
 */
function preEncoded(msg) {
  const bytes = toBinary(ConnectRequestSchema, msg);
  if (msg.msg.case !== 'deltas' || bytes[0] !== ((2 << 3) | WireType.LengthDelimited)) throw new Error('expected a ConnectRequest with only its deltas field (2) set');
  const out = create(ConnectRequestSchema);
  out.$unknown = [{ no: 2, wireType: WireType.LengthDelimited, data: bytes.subarray(1) }];
  return out;
}

/** Sends one agent's batches as the outbox pump does (agent/session/outbox-pump.ts): at most `window` deltas unacked. */
function runBurstAgent(a, window) {
  return new Promise((resolve, reject) => {
    const batches = a.batches;
    const sentAt = [];
    const latencies = [];
    let next = 0;
    let acked = 0; // batches acked
    let sentUpTo = a.committedSeq;
    let ackedUpTo = a.committedSeq;
    const pump = () => {
      while (next < batches.length && sentUpTo - ackedUpTo < window) {
        sentAt.push(now());
        send(a, batches[next].msg);
        sentUpTo = batches[next].lastSeq;
        next++;
      }
    };
    a.onAck = (upTo, t) => {
      ackedUpTo = Math.max(ackedUpTo, upTo);
      while (acked < next && batches[acked].lastSeq <= upTo) latencies.push(t - sentAt[acked++]);
      if (acked === batches.length) {
        a.onAck = null;
        a.onEnd = null;
        resolve({ agentId: a.agentId, latencies, firstSend: sentAt[0], lastAck: t });
      } else pump();
    };
    a.onEnd = () => reject(new Error(`agent ${a.agentId}'s stream ended during the burst (${a.lastError ?? 'no error'})`));
    pump();
  });
}

function waitAllClosed(list) {
  return new Promise((resolve) => {
    const check = () => (list.every((a) => !a.session) ? resolve() : setTimeout(check, 20));
    check();
  });
}

serve({
  /** The shared key, CA and the agent's reconnect schedule. */
  init({ home, keyPem, publicKeyPem, backoff, jitter, reportDelayMs }) {
    cfg = { home, keyPem, publicKeyPem, caPem: readFileSync(`${home}/ca.pem`, 'utf8'), backoff, jitter, reportDelayMs, signer: signerForHome(home, publicKeyPem) };
    return { pid: process.pid };
  },

  /** Issues n agents with this role; returns what the controller's tables need (registerAgents). */
  issue({ n, role, hostPrefix }) {
    const issued = issueAgents(cfg.signer, n, hostPrefix);
    for (const c of issued) {
      // One TLS context per agent, made here and kept across its reconnects (the agent makes one
      // per session, from files; here that would spend, while connecting, CPU the servers
      // measured need).
      const tls = createSecureContext({ ca: cfg.caPem, cert: c.certPem, key: cfg.keyPem, minVersion: 'TLSv1.3' });
      agents.push({ ...c, tls, role, address: '', session: null, reconnect: false, delay: cfg.backoff.initialMs, timer: null, attempts: 0, failures: 0, welcomes: 0, welcomeAt: 0, committedSeq: 0, policyVersion: 0, policyAt: new Map(), commandAt: new Map(), onWelcome: null, onAck: null, onEnd: null, lastError: null, batches: null });
    }
    return issued.map(({ certPem, ...rest }) => rest);
  },

  /**
   * Opens the streams of every agent with this role to `address`, at most `concurrency` not yet
   * welcomed at a time; resolves when every one has its welcome. From then on they reconnect.
   */
  connect({ role, address, concurrency }) {
    const list = ofRole(role);
    const t0 = now();
    const attempts0 = list.reduce((n, a) => n + a.attempts, 0);
    return new Promise((resolve) => {
      let i = 0;
      let inFlight = 0;
      let done = 0;
      const finish = () => resolve({ agents: list.length, ms: now() - t0, attempts: list.reduce((n, a) => n + a.attempts, 0) - attempts0 });
      const startNext = () => {
        while (inFlight < concurrency && i < list.length) {
          const a = list[i++];
          a.address = address;
          a.reconnect = true;
          a.delay = cfg.backoff.initialMs;
          if (a.session?.welcomed) {
            done++;
            continue;
          }
          inFlight++;
          a.onWelcome = () => {
            a.onWelcome = null;
            inFlight--;
            done++;
            if (done === list.length) finish();
            else startNext();
          };
          if (!a.session && !a.timer) open(a);
        }
        if (done === list.length) finish();
      };
      startNext();
    });
  },

  /** Closes this role's streams (no reconnect); resolves when all have ended. */
  async disconnect({ role }) {
    const list = ofRole(role);
    for (const a of list) {
      a.reconnect = false;
      a.onWelcome = a.onAck = a.onEnd = null;
      if (a.timer) clearTimeout(a.timer);
      a.timer = null;
      a.session?.cancel();
    }
    await waitAllClosed(list);
    return { closed: list.length };
  },

  /** How many of this role have been welcomed at or after `since`, the latest such welcome, and connection attempts. */
  welcomed({ role, since, times = false }) {
    const list = ofRole(role);
    let count = 0;
    let last = 0;
    let lastWelcome = 0;
    for (const a of list) {
      lastWelcome = Math.max(lastWelcome, a.welcomeAt);
      if (a.welcomeAt >= since && a.session?.welcomed) {
        count++;
        last = Math.max(last, a.welcomeAt);
      }
    }
    return { ...(times ? { times: list.filter((a) => a.welcomeAt >= since).map((a) => a.welcomeAt) } : {}), count, total: list.length, last, lastWelcome, attempts: list.reduce((n, a) => n + a.attempts, 0), connected: list.filter((a) => a.session?.welcomed).length };
  },

  /** Arrival times of a policy version, or of commands (any id), at this role's agents. */
  received({ role, kind, version }) {
    const times = [];
    for (const a of ofRole(role)) {
      if (kind === 'policy') {
        const t = a.policyAt.get(version);
        if (t !== undefined) times.push(t);
      } else {
        for (const [id, t] of a.commandAt) {
          times.push(t);
          a.commandAt.delete(id);
        }
      }
    }
    return { times };
  },

  burstPrepare({ role, eventsPerAgent, batch }) {
    let n = 0;
    for (const a of ofRole(role)) {
      a.batches = buildBatches(a, eventsPerAgent, batch);
      n += eventsPerAgent;
    }
    return { events: n };
  },

  /** Every burst agent sends its batches as fast as its acks allow; resolves with each agent's latencies. */
  async burstRun({ role, window }) {
    const results = await Promise.all(ofRole(role).map((a) => runBurstAgent(a, window)));
    for (const a of ofRole(role)) a.batches = null;
    return results;
  },

  /** The quiet agent: one delta every intervalMs until quietStop. */
  quietStart({ role, intervalMs }) {
    const [a] = ofRole(role);
    const pending = new Map(); // seq -> sent at
    const samples = [];
    let seq = a.committedSeq;
    a.onAck = (upTo, t) => {
      for (const [s, at] of pending) {
        if (s > upTo) break;
        samples.push({ sentAt: at, ms: t - at });
        pending.delete(s);
      }
    };
    a.onEnd = () => {
      a.quietError = `the quiet agent's stream ended (${a.lastError ?? 'no error'})`;
    };
    a.quiet = {
      pending,
      samples,
      timer: setInterval(() => {
        seq++;
        const msg = create(ConnectRequestSchema, {
          msg: {
            case: 'deltas',
            value: {
              deltas: [
                {
                  seq: BigInt(seq),
                  path: Buffer.from(`/etc/quiet/file-${seq}.conf`),
                  kind: ChangeKind.MODIFIED,
                  state: { type: FileType.REGULAR, size: 10n, mode: 0o100644, uid: 0, gid: 0, mtimeNs: 1n, ctimeNs: 1n, inode: BigInt(seq), nlink: 1, sha256: randomBytes(32) },
                  detectedAt: timestampFromDate(new Date()),
                  source: ChangeSource.REALTIME,
                },
              ],
            },
          },
        });
        pending.set(seq, now());
        send(a, msg);
      }, intervalMs),
    };
    return { started: now() };
  },

  /** Stops sending; waits up to waitMs for outstanding acks; returns every sample (unacked ones with ms null). */
  async quietStop({ role, waitMs }) {
    const [a] = ofRole(role);
    clearInterval(a.quiet.timer);
    const deadline = now() + waitMs;
    while (a.quiet.pending.size && now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const unacked = [...a.quiet.pending.values()].map((sentAt) => ({ sentAt, ms: null }));
    a.onAck = a.onEnd = null;
    return { samples: [...a.quiet.samples, ...unacked], error: a.quietError ?? null };
  },

  memory() {
    return { rss: process.memoryUsage().rss };
  },
});
