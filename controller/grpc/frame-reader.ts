import { ControllerError } from '../errors.js';

/** A gRPC length-prefixed message as it came off the wire (5-byte prefix removed). */
export type Frame = Buffer;

/**
 * Cuts an HTTP/2 DATA byte stream into gRPC messages: a flag byte (bit 0: compressed), a 4-byte
 * big-endian length, then the message. Chunks may split a message anywhere; a message is joined
 * once, when its last byte is in. A message over `maxBytes` is refused from its prefix alone,
 * before any of it is buffered; compressed messages are refused (the agent never compresses, and
 * an unread body must not cost memory).
 */
export interface FrameReader {
  /** Takes a chunk; returns the messages it completed, in order. Throws a ControllerError on a message that cannot be taken. */
  push(chunk: Buffer): Frame[];
  /** Bytes held of a message not yet complete. */
  readonly partial: number;
}

const PREFIX = 5;

export function createFrameReader(maxBytes: number): FrameReader {
  let chunks: Buffer[] = [];
  let held = 0;
  /** Length of the message being read (prefix excluded), or -1 while its prefix is incomplete. */
  let want = -1;

  const take = (n: number): Buffer => {
    // The first n bytes of what is held, copied only when they span chunks.
    const first = chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) chunks.shift();
      else chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      let used = 0; // chunks wholly copied, dropped at once (a message may span thousands)
      while (at < n) {
        const c = chunks[used]!;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) used++;
        else chunks[used] = c.subarray(k);
      }
      chunks.splice(0, used);
    }
    held -= n;
    return out;
  };

  return {
    get partial() {
      return held;
    },
    push(chunk) {
      if (chunk.length) {
        chunks.push(chunk);
        held += chunk.length;
      }
      const out: Frame[] = [];
      for (;;) {
        if (want < 0) {
          if (held < PREFIX) break;
          const prefix = take(PREFIX);
          const flags = prefix[0]!;
          const length = prefix.readUInt32BE(1);
          if (flags & 0b1) {
            chunks = [];
            held = 0;
            throw new ControllerError('invalid_argument', 'compressed messages are not accepted on this stream');
          }
          if (length > maxBytes) {
            chunks = [];
            held = 0;
            throw new ControllerError('resource_exhausted', `message of ${length} bytes is over the limit of ${maxBytes} bytes`);
          }
          want = length;
        }
        if (held < want) break;
        out.push(want === 0 ? Buffer.alloc(0) : take(want));
        want = -1;
      }
      return out;
    },
  };
}

/** A message with its gRPC prefix (uncompressed), ready to write. */
export function frameMessage(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(PREFIX + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, PREFIX);
  return out;
}
