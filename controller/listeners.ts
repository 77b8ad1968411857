import { createContextValues, type Interceptor, type ServiceImpl } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { Logger } from 'pino';
import { AdminService } from '../proto/gen/vigil/v1/admin_pb.js';
import { AgentService } from '../proto/gen/vigil/v1/agent_pb.js';
import type { ControllerConfig } from './config.js';
import type { ControllerHome } from './controller-home.js';
import { formatHostPort, parseHostPort, type HostPort } from './listen-address.js';
import { GRPC_CONTENT_TYPE } from './grpc/server-stream.js';
import { requestHandlerOnStreams, type StreamHandler } from './request-from-stream.js';
import type { ConnectService } from './services/connect-service.js';
import { createEnrolRoute, ENROLL_PATH } from './services/enrol-route.js';
import type { EnrolService } from './services/enrol-service.js';
import { createErrorInterceptor } from './services/error-interceptor.js';
import { identityFromRequest, peerIdentityKey, remoteAddressFromRequest, remoteAddressKey } from './services/peer-identity.js';
import { CONNECT_PATH, createAgentStreamRoute } from './services/stream/agent-stream-route.js';
import { listenTls, type TlsListener } from './tls-listener.js';

/** Admin calls (a policy, a page of files); agents' streams have their own, smaller cap. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const MAX_ENROL_BYTES = 64 * 1024;

/** The services behind the two listeners; each learns the other listener's address once it is bound. */
export interface ListenerServices {
  enrol(connectAddress: () => string): EnrolService;
  readonly connect: ConnectService;
  admin(enrolAddress: () => string): ServiceImpl<typeof AdminService>;
  /** Run on admin calls after the error mapping (the operator revocation check). */
  readonly adminInterceptors: readonly Interceptor[];
}

export interface Listeners {
  /** host:port of the mutual-TLS listener, as bound. */
  readonly address: string;
  /** host:port of the enrolment listener, as bound. */
  readonly enrolAddress: string;
  close(): Promise<void>;
}

/**
 * The two listeners: enrolment on server TLS; agents' streams and the admin API on mutual TLS,
 * where every request carries the identity of its own connection's peer certificate.
 */
export async function startListeners(config: ControllerConfig, home: ControllerHome, logger: Logger, services: ListenerServices): Promise<Listeners> {
  const interceptors = [createErrorInterceptor(logger)];
  let enrolListener: TlsListener | undefined;
  let mtls: TlsListener | undefined;
  // Addresses as agents reach them: a wildcard listen host is replaced by the host init recorded.
  const advertised = (listen: HostPort, recorded: string, port: number | undefined) => {
    const host = ['0.0.0.0', '::'].includes(listen.host) ? parseHostPort(recorded, 'controller.json').host : listen.host;
    return formatHostPort({ host, port: port ?? listen.port });
  };
  const enrolAddress = () => advertised(config.enrolListen, home.info.enrolAddress, enrolListener?.port);
  const connectAddress = () => advertised(config.listen, home.info.address, mtls?.port);

  const enrol = services.enrol(connectAddress);
  // Agents enrol over gRPC, served on the raw HTTP/2 stream (services/enrol-route.ts); connect-node
  // answers everything else on the enrolment listener (the Connect protocol, unknown paths).
  const enrolRoute = createEnrolRoute({ enrol, logger, maxMessageBytes: MAX_ENROL_BYTES });
  const enrolFallback = requestHandlerOnStreams(
    connectNodeAdapter({
      routes: (router) => router.service(AgentService, { enroll: (req, ctx) => enrol.enrol(req, ctx.values.get(remoteAddressKey)) }),
      interceptors,
      readMaxBytes: MAX_ENROL_BYTES,
      grpcWeb: false,
      // The ~3 KB reply is not worth gzip's CPU (about 0.25 ms an enrolment).
      acceptCompression: [],
      contextValues: (req) => createContextValues().set(remoteAddressKey, remoteAddressFromRequest(req)),
    }),
  );
  const onEnrolStream: StreamHandler = (stream, headers, flags, raw) =>
    headers[':path'] === ENROLL_PATH && headers[':method'] === 'POST' && GRPC_CONTENT_TYPE.test(String(headers['content-type'] ?? ''))
      ? enrolRoute(stream, headers)
      : enrolFallback(stream, headers, flags, raw);
  const contextValues = (req: Parameters<typeof identityFromRequest>[0]) => createContextValues().set(peerIdentityKey, identityFromRequest(req, home.info.trustDomain));
  const adminHandler = requestHandlerOnStreams(
    connectNodeAdapter({
      routes: (router) => router.service(AdminService, services.admin(enrolAddress)),
      interceptors: [...interceptors, ...services.adminInterceptors],
      readMaxBytes: MAX_MESSAGE_BYTES,
      grpcWeb: false,
      contextValues,
    }),
  );
  // Agents' streams: served on the raw HTTP/2 stream (services/stream/agent-stream-route.ts).
  const agentStream = createAgentStreamRoute({ connect: services.connect, trustDomain: home.info.trustDomain, logger });
  const onMutualTlsStream: StreamHandler = (stream, headers, flags, raw) => (headers[':path'] === CONNECT_PATH ? agentStream(stream, headers) : adminHandler(stream, headers, flags, raw));

  const tls = { keyPem: home.serverKeyPem, certChainPem: home.serverChainPem };
  mtls = await listenTls({ at: config.listen, ...tls, clientCaPem: home.caPem, onStream: onMutualTlsStream });
  enrolListener = await listenTls({ at: config.enrolListen, ...tls, onStream: onEnrolStream });
  const bound = [mtls, enrolListener];
  return {
    address: formatHostPort({ host: config.listen.host, port: mtls.port }),
    enrolAddress: formatHostPort({ host: config.enrolListen.host, port: enrolListener.port }),
    close: async () => void (await Promise.all(bound.map((l) => l.close()))),
  };
}
