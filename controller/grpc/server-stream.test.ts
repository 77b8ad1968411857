import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { ControllerError } from '../errors.js';
import { createFrameReader, frameMessage } from './frame-reader.js';
import { createServerStream, type ServerStream } from './server-stream.js';

/** A plain-text HTTP/2 server whose streams become ServerStreams handed to `onCall`. */
let server: Http2Server;
let client: ClientHttp2Session;
let onCall: (call: ServerStream) => void = () => undefined;

before(async () => {
  server = createServer();
  server.on('stream', (stream, headers) => onCall(createServerStream(stream, headers, { maxMessageBytes: 1024, readAhead: 2 })));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  client = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
after(async () => {
  client.close();
  await new Promise((r) => server.close(r));
});

interface ClientCall {
  readonly stream: ClientHttp2Stream;
  readonly messages: Buffer[];
  headers: IncomingHttpHeaders | null;
  trailers: IncomingHttpHeaders | null;
  readonly closed: Promise<void>;
}

function call(): ClientCall {
  const stream = client.request({ ':method': 'POST', ':path': '/vigil.v1.AgentService/Connect', 'content-type': 'application/grpc', te: 'trailers' });
  const reader = createFrameReader(1 << 20);
  const c: ClientCall = { stream, messages: [], headers: null, trailers: null, closed: once(stream, 'close').then(() => undefined) };
  // As gRPC clients do: the status (trailers, or a trailers-only response) ends their half.
  stream.on('response', (h) => {
    c.headers = h;
    if (h['grpc-status'] !== undefined) stream.end();
  });
  stream.on('trailers', (t) => {
    c.trailers = t;
    stream.end();
  });
  stream.on('data', (chunk: Buffer) => c.messages.push(...reader.push(chunk)));
  stream.on('error', () => undefined);
  return c;
}

async function until(what: string, cond: () => boolean) {
  for (let i = 0; !cond(); i++) {
    if (i > 5000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('gRPC server stream', () => {
  it('reads messages in order, writes messages down, and ends with grpc-status 0 in the trailers', async () => {
    const got: string[] = [];
    onCall = (s) => {
      void (async () => {
        for await (const m of s.messages) {
          got.push(m.toString());
          s.send(frameMessage(Buffer.from(`echo ${m.toString()}`)));
        }
        s.end();
      })();
    };
    const c = call();
    for (const m of ['a', 'b', 'c']) c.stream.write(frameMessage(Buffer.from(m)));
    c.stream.end();
    await c.closed;
    assert.deepEqual(got, ['a', 'b', 'c']);
    assert.deepEqual(
      c.messages.map((m) => m.toString()),
      ['echo a', 'echo b', 'echo c'],
    );
    assert.equal(c.headers?.['content-type'], 'application/grpc');
    assert.equal(c.trailers?.['grpc-status'], '0');
  });

  it('answers an error before any message trailers-only, with the message percent-encoded', async () => {
    onCall = (s) => s.end(new ConnectError('agent é\nrevoked: <b>', Code.PermissionDenied));
    const c = call();
    await c.closed;
    assert.equal(c.headers?.['grpc-status'], String(Code.PermissionDenied));
    assert.equal(decodeURIComponent(String(c.headers?.['grpc-message'])), 'agent é\nrevoked: <b>');
    assert.equal(c.trailers, null);
  });

  it('ends a call the peer is still sending on: the peer gets the status and the stream closes', async () => {
    let serverClosed = false;
    onCall = (s) => {
      s.signal.addEventListener('abort', () => (serverClosed = true));
      void (async () => {
        for await (const m of s.messages) {
          s.send(frameMessage(m));
          s.end(new ConnectError('revoked', Code.PermissionDenied));
        }
      })();
    };
    const c = call();
    c.stream.write(frameMessage(Buffer.from('x')));
    await c.closed;
    assert.equal(c.trailers?.['grpc-status'], String(Code.PermissionDenied));
    await until('the server stream closed', () => serverClosed);
  });

  it('a signal first read after the stream closed is aborted already', async () => {
    let served: ServerStream | undefined;
    onCall = (s) => {
      served = s;
      s.end();
    };
    // Registered after the server's own listener, so its 'close' listener runs after the ServerStream's.
    const readAtClose = new Promise<boolean>((resolve) => server.once('stream', (stream) => stream.once('close', () => resolve(served!.signal.aborted))));
    const c = call();
    await c.closed;
    assert.equal(await readAtClose, true);
  });

  it('refuses a message over the limit from its prefix, and one cut off by the end of the stream', async () => {
    const errors: unknown[] = [];
    onCall = (s) => {
      void (async () => {
        try {
          for await (const m of s.messages) void m;
        } catch (err) {
          errors.push(err);
          s.end(new ConnectError((err as Error).message, Code.ResourceExhausted));
        }
      })();
    };
    const big = call();
    big.stream.write(Buffer.from([0, 0, 1, 0, 0])); // 65,536 bytes announced, over 1,024
    await big.closed;
    const cut = call();
    cut.stream.end(frameMessage(Buffer.from('whole')).subarray(0, 7));
    await cut.closed;
    assert.ok(errors[0] instanceof ControllerError && errors[0].code === 'resource_exhausted', String(errors[0]));
    assert.ok(errors[1] instanceof ControllerError && errors[1].code === 'invalid_argument' && /ended inside a message/.test(errors[1].message), String(errors[1]));
  });

  it('stops reading while messages are not taken, so HTTP/2 flow control holds the peer back', async () => {
    let taken = 0;
    let received = 0;
    const waiting: (() => void)[] = [];
    const take = () => waiting.shift()?.();
    let raw: import('node:http2').ServerHttp2Stream | null = null;
    const onRawStream = (stream: import('node:http2').ServerHttp2Stream) => {
      raw = stream;
      stream.on('data', (chunk: Buffer) => (received += chunk.length));
    };
    server.prependListener('stream', onRawStream);
    onCall = (s) => {
      void (async () => {
        const it = s.messages[Symbol.asyncIterator]();
        for (;;) {
          await new Promise<void>((r) => waiting.push(r));
          if ((await it.next()).done) break;
          taken++;
        }
        s.end();
      })();
    };
    try {
      const c = call();
      const one = frameMessage(Buffer.alloc(1000, 7));
      const total = 500; // 500 KB: far more than the stream's window (64 KiB) and the server's buffers
      for (let i = 0; i < total; i++) c.stream.write(one);
      await until('the server stream paused', () => raw !== null && raw.isPaused());
      // Round trips on the connection: whatever the window lets through has arrived by then.
      for (let i = 0; i < 3; i++) await new Promise((r, j) => client.ping((err) => (err ? j(err) : r(undefined))));
      assert.ok(received < 150_000, `the server took in ${received} bytes of 500,000 while nothing was read`);
      assert.ok(c.stream.writableLength > 300_000, `the peer still holds ${c.stream.writableLength} bytes`);
      // Taking messages lets the rest through.
      while (taken < total) {
        take();
        await new Promise((r) => setImmediate(r));
      }
      c.stream.end();
      await until('the call ended', () => waiting.length > 0);
      take();
      await c.closed;
      assert.equal(taken, total);
      assert.equal(c.headers?.['grpc-status'], '0', 'no message down: the status comes trailers-only');
    } finally {
      server.off('stream', onRawStream);
    }
  });
});
