import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { createAgentClient } from '../../agent/transport/agent-client.js';
import { ConnectRequestSchema, type ConnectResponse } from '../../proto/gen/vigil/v1/agent_pb.js';
import { waitFor } from './processes.js';

/** A hand-driven agent stream with a given certificate, for attacks and protocol checks. */
export interface RawStream {
  readonly messages: ConnectResponse[];
  /** Resolves with the error that ended the stream (grpc-js ServiceError, with .code). */
  readonly ended: Promise<Error & { code?: number; details?: string }>;
  /** Writes one message; onFlushed runs when grpc-js has handed it to HTTP/2 (flow control permitting). */
  send(msg: MessageInitShape<typeof ConnectRequestSchema>, onFlushed?: () => void): void;
  next(kind: NonNullable<ConnectResponse['msg']['case']>, timeoutMs?: number): Promise<ConnectResponse>;
  close(): void;
}

/** onMessage, when given, sees each message down the stream as it arrives (after it is in `messages`). */
export function openRawStream(address: string, creds: { caPem: string; certPem: string; keyPem: string }, onMessage?: (m: ConnectResponse) => void): RawStream {
  const client = createAgentClient({ address, ...creds });
  const call = client.connect();
  const messages: ConnectResponse[] = [];
  call.on('data', (m: ConnectResponse) => {
    messages.push(m);
    onMessage?.(m);
  });
  const ended = new Promise<Error & { code?: number; details?: string }>((resolve) => {
    call.once('error', resolve);
    call.once('end', () => resolve(Object.assign(new Error('stream ended'), { code: 0 })));
  });
  let seen = 0;
  return {
    messages,
    ended,
    send: (msg, onFlushed) => void call.write(create(ConnectRequestSchema, msg), onFlushed),
    async next(kind, timeoutMs = 10_000) {
      return waitFor(`a ${kind} message`, () => {
        for (; seen < messages.length; seen++) {
          if (messages[seen]!.msg.case === kind) return messages[seen++];
        }
        return undefined;
      }, timeoutMs, 10);
    },
    close() {
      call.cancel();
      client.close();
    },
  };
}

/** Credentials of an enrolled agent's state directory. */
export function stateCreds(stateDir: string): { caPem: string; certPem: string; keyPem: string } {
  return {
    caPem: readFileSync(join(stateDir, 'ca.pem'), 'utf8'),
    certPem: readFileSync(join(stateDir, 'cert.pem'), 'utf8'),
    keyPem: readFileSync(join(stateDir, 'key.pem'), 'utf8'),
  };
}
