import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where the controller side keeps its files (VIGIL_HOME, default ~/.vigil). */
export interface VigilHome {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly operatorCert: string;
  readonly operatorKey: string;
  /** controller.json: addresses and trust domain recorded by init. */
  readonly controllerInfo: string;
  /** Embedded Postgres (PGlite) data directory. */
  readonly dataDir: string;
}

export function resolveHomeDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.VIGIL_HOME || join(homedir(), '.vigil');
}

export function vigilHome(dir: string): VigilHome {
  return {
    dir,
    caCert: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    operatorCert: join(dir, 'operator.pem'),
    operatorKey: join(dir, 'operator.key'),
    controllerInfo: join(dir, 'controller.json'),
    dataDir: join(dir, 'db'),
  };
}

/** What `vigilctl init` records for the controller and vigilctl to find each other. */
export interface ControllerInfo {
  readonly trustDomain: string;
  /** Where vigilctl dials the admin API (mutual TLS). */
  readonly address: string;
  /** What join strings point agents at (server TLS only). */
  readonly enrolAddress: string;
}
