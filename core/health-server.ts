import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

export interface HealthServerOptions {
  /** Where to listen; port 0 asks the OS for a free one. */
  readonly listen: { readonly host: string; readonly port: number };
  /** What /metrics serves. */
  readonly registry: Registry;
  /** Null when ready; otherwise why not (the body of a 503 on /readyz). */
  readonly notReady: () => Promise<string | null>;
  readonly logger: Logger;
}

export interface HealthServer {
  /** host:port it listens on (the port the OS gave when asked for 0). */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Plain HTTP for Prometheus and orchestrators, the controller's and the agent's alike
 * (docs/deploy.md, "Health and metrics"): GET /metrics
 * (Prometheus text format), /healthz (the process answers), /readyz (ready to take agents, or 503
 * with the reason). Nothing else: it carries no agent data and takes no input beyond the path, so
 * it needs no TLS; bind it where only the scraper and the probes reach it.
 */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const text = (res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8') => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return text(res, 405, 'method not allowed\n');
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/healthz':
        return text(res, 200, 'ok\n');
      case '/readyz': {
        const reason = await opts.notReady();
        return reason === null ? text(res, 200, 'ready\n') : text(res, 503, `not ready: ${reason}\n`);
      }
      case '/metrics':
        return text(res, 200, await opts.registry.metrics(), opts.registry.contentType);
      default:
        return text(res, 404, 'not found: /metrics, /healthz and /readyz are served here\n');
    }
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.logger.error({ err }, 'health endpoint failed');
      if (!res.headersSent) text(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  // No request here is slow or large: idle and half-sent requests go quickly.
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listen.port, opts.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    address: address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
