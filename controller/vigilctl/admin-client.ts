import { readFile } from 'node:fs/promises';
import { createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { AdminService } from '../../proto/gen/vigil/v1/admin_pb.js';
import { readSecretFile } from '../../pki/index.js';
import type { ControllerInfo, VigilHome } from '../home.js';

export type AdminClient = Client<typeof AdminService>;

/** The admin API over gRPC with the operator's certificate (mutual TLS, TLS 1.3). */
export async function createAdminClient(home: VigilHome, controller: string | undefined): Promise<{ client: AdminClient; close: () => void }> {
  let address = controller;
  if (!address) {
    const info = JSON.parse(await readFile(home.controllerInfo, 'utf8')) as ControllerInfo;
    address = info.address;
  }
  const [ca, cert, key] = await Promise.all([
    readFile(home.caCert, 'utf8'),
    readFile(home.operatorCert, 'utf8'),
    readSecretFile(home.operatorKey),
  ]);
  const transport = createGrpcTransport({
    baseUrl: `https://${address}`,
    nodeOptions: { ca, cert, key, minVersion: 'TLSv1.3' },
  });
  return { client: createClient(AdminService, transport), close: () => undefined };
}
