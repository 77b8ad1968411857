import { Http2ServerRequest, Http2ServerResponse, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';

export type RequestHandler = (req: Http2ServerRequest, res: Http2ServerResponse) => void;
export type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

/**
 * A request/response handler (connect-node's adapter) served from the 'stream' event, through
 * Node's own compatibility classes, as Node does when a server has a 'request' listener. A
 * listener that routes some streams elsewhere (the agent stream, served raw) cannot have a
 * 'request' listener: Node would make request objects for every stream, and answer each twice.
 */
export function requestHandlerOnStreams(handler: RequestHandler): StreamHandler {
  return (stream, headers, _flags, rawHeaders) => handler(new Http2ServerRequest(stream, headers, {}, rawHeaders), new Http2ServerResponse(stream));
}
