// The bare reference for the controller's listener: node:http2 over mutual TLS with the same
// options as controller/tls-listener.ts (TLS 1.3, ALPN h2 only, client certificates from the
// home's CA required) and the same server certificate, answering AgentService/Connect with gRPC
// response headers and one Welcome message, and nothing else: no identity check, no database.
// Forked by bench/fleet-scale.mjs: start({ host, port }) over IPC, killed to "restart".
import { readFileSync } from 'node:fs';
import { createSecureServer } from 'node:http2';
import { create, toBinary } from '@bufbuild/protobuf';
import { distImport } from './dist.mjs';
import { serve } from './ipc.mjs';

const { ConnectResponseSchema } = await distImport('proto/gen/vigil/v1/agent_pb.js');

const home = process.argv[2];
const welcome = Buffer.from(toBinary(ConnectResponseSchema, create(ConnectResponseSchema, { msg: { case: 'welcome', value: { agentId: '', committedSeq: 0n } } })));
const frame = Buffer.alloc(5 + welcome.length);
frame.writeUInt32BE(welcome.length, 1);
welcome.copy(frame, 5);

let streams = 0;
const server = createSecureServer({
  key: readFileSync(`${home}/server.key`, 'utf8'),
  cert: readFileSync(`${home}/server.pem`, 'utf8'),
  minVersion: 'TLSv1.3',
  allowHTTP1: false,
  ca: readFileSync(`${home}/ca.pem`, 'utf8'),
  requestCert: true,
  rejectUnauthorized: true,
});
server.on('stream', (stream, headers) => {
  stream.on('error', () => undefined);
  if (headers[':path'] !== '/vigil.v1.AgentService/Connect') {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
    return;
  }
  streams++;
  stream.on('close', () => streams--);
  stream.on('data', () => undefined); // hello and anything after it: read and dropped
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
  stream.write(frame);
});
server.on('sessionError', () => undefined);

serve({
  start({ host, port }) {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, backlog: 8192 }, () => resolve({ port: server.address().port, listeningAt: performance.timeOrigin + performance.now() }));
    });
  },
  stats() {
    return { streams, rss: process.memoryUsage().rss };
  },
});
