import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type OutgoingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import pino from 'pino';
import { ConnectRequestSchema } from '../../../proto/gen/vigil/v1/agent_pb.js';
import { grpcCall, grpcStatus, type GrpcCallResult } from '../../../test/support/grpc-call.js';
import { ControllerError } from '../../errors.js';
import { frameMessage } from '../../grpc/frame-reader.js';
import type { ConnectService } from '../connect-service.js';
import { CONNECT_PATH, createAgentStreamRoute } from './agent-stream-route.js';

/** A fake Connect service: each test says what a stream does. */
let serve: ConnectService['serve'] = async () => undefined;
const route = createAgentStreamRoute({ connect: { serve: (id, wire) => serve(id, wire) }, trustDomain: 'vigil.test', logger: pino({ level: 'silent' }) });
const server = createServer();
server.on('stream', (stream, headers) => route(stream, headers));
let base = '';

before(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise((r) => server.close(r)));

const request = (headers: OutgoingHttpHeaders, body: Buffer[]): Promise<GrpcCallResult> => grpcCall(base, CONNECT_PATH, body, headers);

const status = grpcStatus;

describe('agent stream route', () => {
  it('hands the service decoded messages, and a plain-text peer no identity', async () => {
    const seen: string[] = [];
    let identity: unknown = 'unset';
    serve = async (id, wire) => {
      identity = id;
      for await (const req of wire.requests) seen.push(req.msg.case ?? 'none');
      wire.send({ msg: { case: 'welcome', value: { agentId: 'a', committedSeq: 1n } } });
    };
    const hello = toBinary(ConnectRequestSchema, create(ConnectRequestSchema, { msg: { case: 'hello', value: { hostname: 'h' } } }));
    const r = await request({}, [frameMessage(hello), frameMessage(hello)]);
    assert.deepEqual(seen, ['hello', 'hello']);
    assert.equal(identity, null);
    assert.equal(status(r).code, 0);
    assert.ok(r.data.length > 5, 'the welcome went down');
  });

  it('refuses a message that is not protobuf as INVALID_ARGUMENT, naming it malformed', async () => {
    serve = async (_id, wire) => {
      for await (const req of wire.requests) void req;
    };
    const r = await request({}, [frameMessage(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]))]);
    assert.equal(status(r).code, 3);
    assert.match(status(r).message, /malformed message/);
  });

  it("maps the service's typed errors to their status, and anything else to INTERNAL without its text", async () => {
    serve = async () => {
      throw new ControllerError('permission_denied', 'agent x was revoked');
    };
    const revoked = await request({}, []);
    assert.deepEqual(status(revoked), { code: 7, message: 'agent x was revoked' });
    serve = async () => {
      throw new Error('secret detail');
    };
    const bug = await request({}, []);
    assert.deepEqual(status(bug), { code: 13, message: 'internal error' });
  });

  it('answers a request that is not gRPC with 415, and a GET with 405, without calling the service', async () => {
    let called = false;
    serve = async () => {
      called = true;
    };
    assert.equal((await request({ 'content-type': 'application/json' }, []))?.headers[':status'], 415);
    assert.equal((await request({ ':method': 'GET' }, []))?.headers[':status'], 405);
    assert.equal(called, false);
  });
});
