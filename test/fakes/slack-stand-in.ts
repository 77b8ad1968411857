import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackPost {
  readonly method: string;
  readonly authorization: string | undefined;
  readonly params: Record<string, string>;
}

/** A local HTTP server that answers Slack Web API calls the way Slack does, and records them. */
export interface SlackStandIn {
  /** The value for SLACK_API_URL. */
  readonly apiUrl: string;
  readonly posts: SlackPost[];
  close(): Promise<void>;
}

export async function startSlackStandIn(opts: { onPost?: (p: SlackPost) => void; port?: number } = {}): Promise<SlackStandIn> {
  const posts: SlackPost[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const method = (req.url ?? '').replace(/^\/api\//, '');
      const type = req.headers['content-type'] ?? '';
      const params: Record<string, string> = type.includes('json')
        ? (JSON.parse(body || '{}') as Record<string, string>)
        : Object.fromEntries(new URLSearchParams(body));
      const post = { method, authorization: req.headers.authorization, params };
      posts.push(post);
      opts.onPost?.(post);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, channel: params.channel ?? 'C1', ts: `${Date.now() / 1000}` }));
    });
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    apiUrl: `http://127.0.0.1:${port}/api/`,
    posts,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
