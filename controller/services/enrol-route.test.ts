import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type OutgoingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import pino from 'pino';
import { PkiError } from '../../pki/index.js';
import { EnrollRequestSchema, EnrollResponseSchema } from '../../proto/gen/vigil/v1/agent_pb.js';
import { grpcCall, grpcStatus, type GrpcCallResult } from '../../test/support/grpc-call.js';
import { ControllerError } from '../errors.js';
import { frameMessage } from '../grpc/frame-reader.js';
import { createEnrolRoute, ENROLL_PATH } from './enrol-route.js';
import type { EnrolRequest, EnrolResult, EnrolService } from './enrol-service.js';

const MAX = 1024;
/** A fake enrol service: each test says what an enrolment does; every call is recorded. */
let enrol: EnrolService['enrol'] = async () => {
  throw new Error('not set');
};
const calls: { req: EnrolRequest; remote: string }[] = [];
const route = createEnrolRoute({
  enrol: {
    enrol: (req, remote) => {
      calls.push({ req, remote });
      return enrol(req, remote);
    },
  },
  logger: pino({ level: 'silent' }),
  maxMessageBytes: MAX,
});
const server = createServer();
server.on('stream', (stream, headers) => route(stream, headers));
let base = '';

before(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise((r) => server.close(r)));

async function call(body: Buffer[], headers: OutgoingHttpHeaders = {}): Promise<GrpcCallResult> {
  calls.length = 0;
  return grpcCall(base, ENROLL_PATH, body, headers);
}

const status = grpcStatus;

const request = (init: Partial<EnrolRequest> = {}) =>
  frameMessage(toBinary(EnrollRequestSchema, create(EnrollRequestSchema, { token: 'id.secret', csrPem: 'CSR', hostname: 'host-1', ...init })));

const RESULT: EnrolResult = { agentId: 'a-1', certificatePem: 'CERT', caPem: 'CA', trustDomain: 'vigil.test', connectAddress: '127.0.0.1:8443' };

describe('enrol route (Enroll over gRPC on the raw HTTP/2 stream)', () => {
  it("hands the service the request and the connection's peer address, and answers with its result, status OK in the trailers", async () => {
    enrol = async () => RESULT;
    const r = await call([request({ hostname: 'web-1' })]);
    assert.equal(calls.length, 1);
    assert.deepEqual({ token: calls[0]!.req.token, csrPem: calls[0]!.req.csrPem, hostname: calls[0]!.req.hostname }, { token: 'id.secret', csrPem: 'CSR', hostname: 'web-1' });
    assert.equal(calls[0]!.remote, '127.0.0.1');
    assert.equal(r.headers[':status'], 200);
    assert.match(String(r.headers['content-type']), /^application\/grpc/);
    assert.deepEqual(status(r), { code: 0, message: '' });
    assert.ok(r.trailers, 'the status came in trailers after the message');
    assert.equal(r.data[0], 0, 'not compressed');
    assert.equal(r.data.readUInt32BE(1), r.data.length - 5, 'one whole message');
    const res = fromBinary(EnrollResponseSchema, r.data.subarray(5));
    assert.deepEqual({ ...res, $typeName: undefined }, { ...RESULT, $typeName: undefined });
  });

  it("maps the service's typed errors to their status, and anything else to INTERNAL without its text", async () => {
    enrol = async () => {
      throw new ControllerError('unauthenticated', 'token is not valid');
    };
    assert.deepEqual(status(await call([request()])), { code: 16, message: 'token is not valid' });
    enrol = async () => {
      throw new ControllerError('resource_exhausted', 'too many failed enrolment attempts');
    };
    assert.deepEqual(status(await call([request()])), { code: 8, message: 'too many failed enrolment attempts' });
    enrol = async () => {
      throw new PkiError('csr_weak_key', 'CSR key must be RSA of at least 2048 bits');
    };
    assert.deepEqual(status(await call([request()])), { code: 3, message: 'CSR key must be RSA of at least 2048 bits' });
    enrol = async () => {
      throw new Error('secret detail');
    };
    assert.deepEqual(status(await call([request()])), { code: 13, message: 'internal error' });
  });

  it('refuses, without calling the service: no message, two messages, a malformed one, one over the limit, a compressed one', async () => {
    enrol = async () => RESULT;
    const none = status(await call([]));
    assert.equal(none.code, 3);
    assert.match(none.message, /none came/);
    assert.equal(calls.length, 0);
    const two = status(await call([request(), request()]));
    assert.equal(two.code, 3);
    assert.match(two.message, /a second came/);
    assert.equal(calls.length, 0);
    const malformed = status(await call([frameMessage(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]))]));
    assert.equal(malformed.code, 3);
    assert.match(malformed.message, /malformed message/);
    assert.equal(calls.length, 0);
    const big = Buffer.alloc(5);
    big.writeUInt32BE(MAX + 1, 1);
    const over = status(await call([big]));
    assert.equal(over.code, 8);
    assert.equal(calls.length, 0);
    const compressed = request();
    compressed[0] = 1;
    assert.equal(status(await call([compressed])).code, 3);
    assert.equal(calls.length, 0);
  });

  it('takes a message split across DATA frames', async () => {
    enrol = async () => RESULT;
    const whole = request({ csrPem: 'x'.repeat(600) });
    const r = await call([whole.subarray(0, 3), whole.subarray(3, 300), whole.subarray(300)]);
    assert.equal(status(r).code, 0);
    assert.equal(calls[0]!.req.csrPem, 'x'.repeat(600));
  });
});
