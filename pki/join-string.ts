import { PkiError } from './errors.js';
import { isValidPin } from './pin.js';
import { parseToken, type Token, formatToken } from './token.js';

/**
 * A join string carries everything an agent needs for first contact:
 * `vigil://HOST:PORT?token=<id>.<secret>&pin=sha256:<hex>[&pin=...]`.
 * Several pins are allowed so that a CA can be rotated.
 */
export interface JoinInfo {
  readonly address: string;
  readonly token: Token;
  readonly pins: readonly string[];
}

export function formatJoinString(info: JoinInfo): string {
  const params = new URLSearchParams();
  params.set('token', formatToken(info.token));
  for (const pin of info.pins) params.append('pin', pin);
  return `vigil://${info.address}?${params.toString()}`;
}

export function parseJoinString(text: string): JoinInfo {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch (cause) {
    throw new PkiError('invalid_join_string', 'join string is not a vigil:// URL', { cause });
  }
  if (url.protocol !== 'vigil:' || !url.host) {
    throw new PkiError('invalid_join_string', 'join string must start with vigil://HOST:PORT');
  }
  if (!url.port) throw new PkiError('invalid_join_string', 'join string has no port');
  const tokenText = url.searchParams.get('token');
  if (!tokenText) throw new PkiError('invalid_join_string', 'join string has no token');
  const pins = url.searchParams.getAll('pin');
  if (pins.length === 0) {
    throw new PkiError('invalid_join_string', 'join string has no CA pin (pin=sha256:...): refusing to enrol without one');
  }
  for (const pin of pins) {
    if (!isValidPin(pin)) throw new PkiError('invalid_join_string', 'CA pin must be sha256: followed by 64 hex digits');
  }
  return { address: url.host, token: parseToken(tokenText), pins };
}
