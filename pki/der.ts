/**
 * The little DER and PEM the CSR check and the CA need on their hot path, on Buffers: reading the
 * outline of a structure (tag, where the content is), writing a header, PEM in and out. Nothing
 * here interprets keys or signatures: OpenSSL (node:crypto) does that, node-forge builds
 * certificates. Every reader throws a plain Error on anything malformed; callers turn it into their
 * own PkiError.
 */

export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
  /** [0] constructed, context-specific (a PKCS#10 request's attributes). */
  CONTEXT_0: 0xa0,
} as const;

/** One DER element: its tag, where it starts, where its content starts and where it ends. */
export interface DerElement {
  readonly tag: number;
  readonly at: number;
  readonly contentAt: number;
  readonly end: number;
}

/**
 * The element at `at`, which must end by `limit`. Single-byte tags only; definite, minimally
 * encoded lengths only (DER), at most 4 length bytes.
 */
export function readElement(der: Buffer, at: number, limit = der.length): DerElement {
  if (at + 2 > limit) throw new Error('truncated DER');
  const tag = der[at]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte DER tag');
  const first = der[at + 1]!;
  let length = first;
  let contentAt = at + 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0) throw new Error('indefinite length (BER, not DER)');
    if (n > 4 || contentAt + n > limit) throw new Error('bad DER length');
    if (der[contentAt] === 0) throw new Error('DER length not minimal');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[contentAt + i]!;
    if (length < 0x80) throw new Error('DER length not minimal');
    contentAt += n;
  }
  const end = contentAt + length;
  if (end > limit) throw new Error('truncated DER');
  return { tag, at, contentAt, end };
}

/** The element at `at` with the tag expected. */
export function expectElement(der: Buffer, at: number, tag: number, limit = der.length): DerElement {
  const e = readElement(der, at, limit);
  if (e.tag !== tag) throw new Error(`DER tag 0x${e.tag.toString(16)} where 0x${tag.toString(16)} was expected`);
  return e;
}

/** The elements a constructed element holds, which must fill it exactly. */
export function childrenOf(der: Buffer, parent: DerElement): DerElement[] {
  const out: DerElement[] = [];
  for (let at = parent.contentAt; at < parent.end; ) {
    const e = readElement(der, at, parent.end);
    out.push(e);
    at = e.end;
  }
  return out;
}

/** An element's whole encoding (tag, length, content). */
export const elementBytes = (der: Buffer, e: DerElement): Buffer => der.subarray(e.at, e.end);
/** An element's content. */
export const contentBytes = (der: Buffer, e: DerElement): Buffer => der.subarray(e.contentAt, e.end);

/** Tag and DER length of an element whose content is `length` bytes. */
export function header(tag: number, length: number): Buffer {
  if (length < 0x80) return Buffer.from([tag, length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
}

/** An element of `tag` around the concatenated parts. */
export function element(tag: number, ...parts: Buffer[]): Buffer {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const h = header(tag, length);
  return Buffer.concat([h, ...parts], h.length + length);
}

const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The DER of the first PEM block with one of `labels` in `text` (text around it is ignored, as
 * OpenSSL and node-forge ignore it). The body must be base64 and line breaks only: no RFC 1421
 * headers (an encrypted block is not DER).
 */
export function pemToDer(text: string, labels: readonly string[]): { label: string; der: Buffer } {
  for (let from = text.indexOf('-----BEGIN '); from >= 0; from = text.indexOf('-----BEGIN ', from + 1)) {
    const labelEnd = text.indexOf('-----', from + 11);
    if (labelEnd < 0) break;
    const label = text.slice(from + 11, labelEnd);
    if (!labels.includes(label)) continue;
    const footer = `-----END ${label}-----`;
    const bodyEnd = text.indexOf(footer, labelEnd + 5);
    if (bodyEnd < 0) throw new Error(`PEM block ${label} has no end line`);
    const body = text.slice(labelEnd + 5, bodyEnd).replace(/\r?\n/g, '');
    // Buffer.from(…, 'base64') skips what is not base64; the check makes that a refusal.
    if (!BASE64_BODY.test(body) || body.length % 4 !== 0) throw new Error(`PEM block ${label} is not base64`);
    return { label, der: Buffer.from(body, 'base64') };
  }
  throw new Error(`no PEM block labelled ${labels.join(' or ')}`);
}

/** PEM of DER: base64 in lines of 64, each line ended by `eol` (node:crypto writes "\n", node-forge "\r\n"). */
export function derToPem(der: Buffer, label: string, eol = '\n'): string {
  const b64 = der.toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + eol;
  return `-----BEGIN ${label}-----${eol}${body}-----END ${label}-----${eol}`;
}
