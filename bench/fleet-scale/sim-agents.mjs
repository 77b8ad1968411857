// A worker process of simulated agents (forked by bench/fleet-scale.mjs, driven over IPC).
//
// Each simulated agent has its own certificate (one key pair shared by all, issued by the home's
// CA: certs.mjs), its own HTTP/2 connection and TLS session (node:http2's client with a TLS
// context made once per agent and kept across its reconnects; a keepalive ping after 30 s without
// data, the session over when it goes unanswered for 10 s) and its own Connect stream
// speaking the real protocol (proto/vigil/v1/agent.proto, the agent's gRPC framing): hello, then
// the welcome, delta batches and acks; policies and commands are recorded on arrival and answered
// with a ScanReport, as the agent does after its scan. A stream that ends is reopened with the
// agent's backoff (agent/session/stream-client.ts: 250 ms doubling to 15 s, delay/2 + random
// delay/2, or random delay with --jitter full; reset after a session that lasted 30 s).
//
// The gRPC is spoken here directly, on raw node:http2 client streams, not through a gRPC library:
// the simulated agents stand in for other machines, yet their CPU is taken from the two cores the
// controller and Postgres are measured on, and during a fan-out it decides how soon "the last
// agent received it". So they do the least that is still the protocol: one POST stream per
// session (content-type application/grpc, te: trailers), messages framed as gRPC (flag, 32-bit
// length) and encoded with protobuf-es (delta batches encoded and framed before the burst), every
// message down decoded with protobuf-es (the welcome, acks, policies and commands are really
// read), the status read from the trailers (or trailers-only headers); the decoder is warmed at
// set-up (warmUp). Per message received this costs 40–60 µs of this worker's CPU once warm,
// against 120–160 µs through @connectrpc/connect-node's gRPC transport with a session manager per
// agent (1,000 agents in one worker, a policy pushed to each; the first push 90–150 µs against
// ~420 µs); docs/benchmarks.md has the fan-out figures. With connect-node an unanswered keepalive
// ping destroyed the session with an error no listener was left to handle, and the worker
// crashed when a server stalled for over 10 s; here every error ends the session. (Before that,
// @grpc/grpc-js, the agent's library: ~6 ms of client CPU per connection against ~4.7 ms with
// connect-node and the bare server's ~2.4 ms: a global subchannel pool compared option by option
// on every new channel, a TLS context per attempt.)
//
// Times are `performance.timeOrigin + performance.now()` (ms since the epoch, sub-ms resolution):
// the same clock as the parent's, which starts RPCs and restarts servers on this machine.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as http2Connect, constants as h2 } from 'node:http2';
import { createSecureContext } from 'node:tls';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { issueAgents, signerForHome } from './certs.mjs';
import { distImport } from './dist.mjs';
import { serve } from './ipc.mjs';

const { ConnectRequestSchema, ConnectResponseSchema } = await distImport('proto/gen/vigil/v1/agent_pb.js');
const { ChangeKind, ChangeSource, FileType } = await distImport('proto/gen/vigil/v1/types_pb.js');
const { parsePolicyYaml } = await distImport('core/policy-schema.js');
const { policyToPb } = await distImport('proto/convert.js');

const now = () => performance.timeOrigin + performance.now();

/**
 * The keepalive: the agent's 30 s and 10 s (agent/transport/agent-client.ts), on the rule of
 * connect-node's session manager, which these clients used before: a ping once 30 s have passed
 * without data (the agent's grpc-js pings every 30 s, data or not).
 */
const PING_INTERVAL_MS = 30_000;
const PING_TIMEOUT_MS = 10_000;
/** The request headers of AgentService/Connect over gRPC (node:http2 adds :scheme and :authority). */
const CONNECT_HEADERS = Object.freeze({ ':method': 'POST', ':path': '/vigil.v1.AgentService/Connect', 'content-type': 'application/grpc', te: 'trailers' });

let cfg = null; // init()
const agents = [];
const ofRole = (role) => agents.filter((a) => a.role === role);

/** One gRPC length-prefixed message: flag 0 (not compressed), big-endian length, the bytes. */
function frame(bytes) {
  const out = Buffer.allocUnsafe(5 + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

/** A ConnectRequest, encoded and framed. */
const encode = (init) => frame(toBinary(ConnectRequestSchema, create(ConnectRequestSchema, init)));

const hello = (a) => encode({ msg: { case: 'hello', value: { hostname: a.hostname, agentVersion: 'fleet-bench', policyVersion: BigInt(a.policyVersion) } } });

/** Writes framed bytes up the agent's live stream (dropped when it has none, as before). */
function send(a, framed) {
  if (a.session && !a.session.ended) a.session.stream.write(framed);
}

/** The ScanReport an agent sends after the scan a policy or a command asked for (a short, jittered "scan"). */
function reportScan(a, commandId, policyVersion) {
  const delay = cfg.reportDelayMs * (0.5 + Math.random());
  setTimeout(() => {
    const at = timestampFromDate(new Date());
    send(a, encode({ msg: { case: 'scanReport', value: { commandId, policyVersion: BigInt(policyVersion), summary: { filesScanned: 1n, changes: 0n, errors: 0n, startedAt: at, finishedAt: at } } } }));
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

/**
 * One session: an HTTP/2 connection of this agent's own (its TLS context, kept across attempts)
 * and one Connect stream on it. Whatever ends it (the status in the trailers, a reset, a session
 * error, a keepalive ping unanswered for 10 s, cancel) ends both, once, and schedules the
 * reconnect; every error event has a listener for the session's whole life.
 */
function open(a) {
  const s = { started: now(), welcomed: false, ended: false, session: null, stream: null, rest: null, status: null, statusMessage: '', error: null, lastDataAt: 0, pingTimer: null, pingTimeout: null, end: null, cancel: null };
  a.session = s;
  a.attempts++;
  const end = (err) => {
    if (s.ended) return;
    s.ended = true;
    clearTimeout(s.pingTimer);
    clearTimeout(s.pingTimeout);
    if (!s.session.destroyed) s.session.destroy(undefined, h2.NGHTTP2_CANCEL);
    if (a.session === s) a.session = null;
    if (err && !s.welcomed) a.failures++;
    if (err && s.welcomed) a.lastError = err.message;
    a.onEnd?.();
    if (a.reconnect) scheduleReconnect(a, s);
  };
  s.end = end;
  s.cancel = () => end(new Error('cancelled'));
  s.lastDataAt = s.started;

  const session = http2Connect(`https://${a.address}`, { secureContext: a.tls });
  s.session = session;
  session.on('error', (err) => end(err));
  session.on('close', () => end(s.error ?? new Error('connection closed')));
  // The keepalive: a ping once 30 s have passed without data; unanswered for 10 s, the session is
  // over (ended here, as a session error, rather than thrown).
  const keepalive = () => {
    if (s.ended) return;
    const quiet = now() - s.lastDataAt;
    if (quiet < PING_INTERVAL_MS) {
      s.pingTimer = setTimeout(keepalive, PING_INTERVAL_MS - quiet).unref();
      return;
    }
    s.pingTimeout = setTimeout(() => end(new Error(`keepalive ping unanswered for ${PING_TIMEOUT_MS / 1000} s`)), PING_TIMEOUT_MS).unref();
    try {
      session.ping((err) => {
        clearTimeout(s.pingTimeout);
        if (err || s.ended) return; // a cancelled ping: the session's own events end it
        s.lastDataAt = now();
        s.pingTimer = setTimeout(keepalive, PING_INTERVAL_MS).unref();
      });
    } catch (err) {
      end(err);
    }
  };
  s.pingTimer = setTimeout(keepalive, PING_INTERVAL_MS).unref();

  const stream = session.request({ ...CONNECT_HEADERS });
  s.stream = stream;
  stream.on('error', (err) => {
    s.error ??= err;
  });
  stream.on('response', (headers) => {
    const status = headers[':status'];
    if (status !== 200) return end(new Error(`HTTP status ${status}`));
    const type = headers['content-type'];
    if (typeof type !== 'string' || !type.startsWith('application/grpc')) return end(new Error(`content-type ${type}`));
    // Trailers-only: the status in the headers, no body.
    if (headers['grpc-status'] !== undefined) {
      s.status = headers['grpc-status'];
      s.statusMessage = headers['grpc-message'] ?? '';
    }
  });
  stream.on('trailers', (trailers) => {
    s.status = trailers['grpc-status'] ?? null;
    s.statusMessage = trailers['grpc-message'] ?? '';
  });
  stream.on('data', (chunk) => onData(a, s, chunk));
  // The server's side ended (after the trailers, or with trailers-only headers), or the stream was
  // reset or destroyed: the request side, still open, ends with it.
  const finish = () => {
    if (s.status === '0') end(null);
    else if (s.status !== null) end(new Error(`grpc-status ${s.status}: ${statusMessage(s.statusMessage)}`));
    else end(s.error ?? new Error(`stream closed without a status (HTTP/2 code ${stream.rstCode})`));
  };
  stream.on('end', finish);
  stream.on('close', finish);
  stream.write(hello(a));
}

/** grpc-message is percent-encoded; kept as sent when it is not valid. */
function statusMessage(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * The stream's gRPC messages out of 'data' chunks, which split and coalesce them: whole frames
 * decoded in place (fromBinary: the policy and the command are really read), a partial one kept
 * until the rest arrives. One arrival time per chunk.
 */
function onData(a, s, chunk) {
  if (s.ended) return;
  const t = now();
  s.lastDataAt = t;
  let buf = s.rest === null ? chunk : Buffer.concat([s.rest, chunk]);
  let off = 0;
  while (buf.length - off >= 5) {
    const len = buf.readUInt32BE(off + 1);
    if (buf.length - off - 5 < len) break;
    if (buf[off] !== 0) return s.end(new Error(`a compressed message (flag ${buf[off]}), never asked for`));
    let m;
    try {
      m = fromBinary(ConnectResponseSchema, buf.subarray(off + 5, off + 5 + len));
    } catch (err) {
      return s.end(err);
    }
    off += 5 + len;
    onMessage(a, m, t);
    if (s.ended) return;
  }
  s.rest = off === buf.length ? null : buf.subarray(off);
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
    // Encoded and framed now, not at send: the bytes written up the stream during the burst.
    out.push({ lastSeq: seq, msg: encode({ msg: { case: 'deltas', value: { deltas } } }) });
  }
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

/**
 * Decodes every kind of message this worker reads (a policy shaped like the one the benchmark
 * pushes) and encodes its scan report `n` times, at set-up: protobuf-es's reflective code is then
 * compiled before the first fan-out instead of during it. One process here stands in for 2,500
 * machines, so the one-off cost of a cold decoder, small on each real agent's own machine, would
 * be paid here ~2,500 times over on the cores the controller is measured on (the first push to
 * 1,000 agents of a worker: 200–300 µs of CPU per message received cold, ~90 µs warmed, 40–60 µs
 * from the second on). Nothing sent or read changes.
 */
function warmUp(n) {
  const policy = policyToPb({ version: 0, ...parsePolicyYaml('rules:\n  - name: fleet-bench\n    paths: [/srv/app]\n', 'fleet-bench') });
  const downs = [
    { msg: { case: 'welcome', value: { agentId: 'warm-up', committedSeq: 5n } } },
    { msg: { case: 'ack', value: { upToSeq: 5n } } },
    { msg: { case: 'policy', value: policy } },
    { msg: { case: 'command', value: { id: 'warm-up', kind: { case: 'rescan', value: { fullHash: false } } } } },
  ].map((m) => toBinary(ConnectResponseSchema, create(ConnectResponseSchema, m)));
  let check = 0;
  for (let i = 0; i < n; i++) {
    for (const bytes of downs) check += fromBinary(ConnectResponseSchema, bytes).msg.case.length;
    const at = timestampFromDate(new Date());
    check += encode({ msg: { case: 'scanReport', value: { commandId: 'warm-up', policyVersion: 2n, summary: { filesScanned: 1n, changes: 0n, errors: 0n, startedAt: at, finishedAt: at } } } }).length;
  }
  if (check === 0) throw new Error('warm-up decoded nothing');
}

serve({
  /** The shared key, CA and the agent's reconnect schedule. */
  init({ home, keyPem, publicKeyPem, backoff, jitter, reportDelayMs }) {
    cfg = { home, keyPem, publicKeyPem, caPem: readFileSync(`${home}/ca.pem`, 'utf8'), backoff, jitter, reportDelayMs, signer: signerForHome(home, publicKeyPem) };
    warmUp(2000);
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
        const msg = encode({
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
