import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import { createSecureContext } from 'node:tls';
import grpc from '@grpc/grpc-js';
import {
  ConnectRequestSchema,
  ConnectResponseSchema,
  EnrollRequestSchema,
  EnrollResponseSchema,
  type ConnectRequest,
  type ConnectResponse,
  type EnrollRequest,
  type EnrollResponse,
} from '../../proto/gen/vigil/v1/agent_pb.js';

function codec<T extends DescMessage>(schema: T) {
  return {
    serialize: (m: MessageShape<T>) => Buffer.from(toBinary(schema, m)),
    deserialize: (b: Buffer) => fromBinary(schema, b),
  };
}

const enroll = codec(EnrollRequestSchema);
const enrollRes = codec(EnrollResponseSchema);
const up = codec(ConnectRequestSchema);
const down = codec(ConnectResponseSchema);

const AgentServiceClient = grpc.makeGenericClientConstructor(
  {
    enroll: {
      path: '/vigil.v1.AgentService/Enroll',
      requestStream: false,
      responseStream: false,
      requestSerialize: enroll.serialize,
      requestDeserialize: enroll.deserialize,
      responseSerialize: enrollRes.serialize,
      responseDeserialize: enrollRes.deserialize,
    },
    connect: {
      path: '/vigil.v1.AgentService/Connect',
      requestStream: true,
      responseStream: true,
      requestSerialize: up.serialize,
      requestDeserialize: up.deserialize,
      responseSerialize: down.serialize,
      responseDeserialize: down.deserialize,
    },
  },
  'AgentService',
);

export type ConnectCall = grpc.ClientDuplexStream<ConnectRequest, ConnectResponse>;

/** AgentService over @grpc/grpc-js (reconnects, keepalive), messages encoded by protobuf-es. */
export interface AgentClient {
  enroll(req: MessageInitShape<typeof EnrollRequestSchema>, deadlineMs?: number): Promise<EnrollResponse>;
  connect(): ConnectCall;
  close(): void;
}

export interface AgentClientOptions {
  readonly address: string;
  readonly caPem: string;
  /** Client certificate and key for the mutual-TLS listener; omitted for enrolment. */
  readonly certPem?: string;
  readonly keyPem?: string;
}

export function createAgentClient(opts: AgentClientOptions): AgentClient {
  // TLS 1.3 only; the CA is the one pinned at enrolment, not the system store.
  const creds = grpc.credentials.createFromSecureContext(
    createSecureContext({
      ca: opts.caPem,
      minVersion: 'TLSv1.3',
      ...(opts.certPem && opts.keyPem ? { cert: opts.certPem, key: opts.keyPem } : {}),
    }),
  );
  const client = new AgentServiceClient(opts.address, creds, {
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    'grpc.max_send_message_length': 16 * 1024 * 1024,
    'grpc.initial_reconnect_backoff_ms': 500,
    'grpc.max_reconnect_backoff_ms': 10_000,
  }) as unknown as grpc.Client & {
    enroll(req: EnrollRequest, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: EnrollResponse) => void): void;
    connect(): ConnectCall;
  };
  return {
    enroll(req, deadlineMs = 15_000) {
      return new Promise((resolve, reject) => {
        client.enroll(create(EnrollRequestSchema, req), { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res!)));
      });
    },
    connect: () => client.connect(),
    close: () => client.close(),
  };
}
