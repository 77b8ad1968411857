import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import grpc from '@grpc/grpc-js';
import { AgentError } from '../errors.js';
import { agentErrorFromGrpc, grpcText } from './grpc-errors.js';

const status = (code: number, details: string) => Object.assign(new Error(`${code} ${details}`), { code, details });

describe('gRPC statuses as agent errors', () => {
  it('enrolment: a controller not reached is "cannot reach", never "enrolment refused"', () => {
    for (const code of [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]) {
      const e = agentErrorFromGrpc(status(code, 'No connection established'), 'enrol');
      assert.equal(e.code, 'controller_unreachable');
      assert.doesNotMatch(e.message, /refused/);
    }
  });

  it('enrolment: a refusal says so, with the controller\'s reason', () => {
    for (const code of [grpc.status.PERMISSION_DENIED, grpc.status.UNAUTHENTICATED, grpc.status.INVALID_ARGUMENT, grpc.status.RESOURCE_EXHAUSTED]) {
      const e = agentErrorFromGrpc(status(code, 'the token is not valid'), 'enrol');
      assert.equal(e.code, 'enrol_refused');
      assert.match(e.message, /enrolment refused: the token is not valid/);
    }
    assert.equal(agentErrorFromGrpc(status(grpc.status.INTERNAL, 'boom'), 'enrol').code, 'call_failed');
  });

  it('stream: revoked, a refused message, and what is worth retrying', () => {
    assert.equal(agentErrorFromGrpc(status(grpc.status.PERMISSION_DENIED, 'agent x was revoked'), 'stream').code, 'revoked');
    assert.equal(agentErrorFromGrpc(status(grpc.status.INVALID_ARGUMENT, 'batch too large'), 'stream').code, 'message_refused');
    assert.equal(agentErrorFromGrpc(status(grpc.status.RESOURCE_EXHAUSTED, 'too big'), 'stream').code, 'message_refused');
    assert.equal(agentErrorFromGrpc(status(grpc.status.UNAVAILABLE, 'gone'), 'stream').code, 'controller_unreachable');
    assert.equal(agentErrorFromGrpc(status(grpc.status.CANCELLED, 'cancelled'), 'stream').code, 'call_failed');
    assert.equal(agentErrorFromGrpc(new Error('no code at all'), 'stream').code, 'call_failed');
    const own = new AgentError('certificate_expired', 'expired');
    assert.equal(agentErrorFromGrpc(own, 'stream'), own, 'an AgentError passes through');
  });

  it('decodes percent-encoded status text, leaving other % signs alone', () => {
    assert.equal(grpcText('laptop stolen: 100%25 sure'), 'laptop stolen: 100% sure');
    assert.equal(grpcText('100% sure'), '100% sure');
    assert.equal(grpcText('%E2%9C%93 ok %zz'), '✓ ok %zz');
  });
});
