import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { PkiError } from './errors.js';

/** An enrolment token `<id>.<secret>`: the id is public, the secret 256 random bits. */
export interface Token {
  readonly id: string;
  readonly secret: string;
}

const ID_RE = /^[a-z0-9]{10}$/;
const SECRET_RE = /^[A-Za-z0-9_-]{43}$/;
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export function generateToken(): Token {
  const idBytes = randomBytes(10);
  let id = '';
  for (const b of idBytes) id += ID_ALPHABET[b % ID_ALPHABET.length];
  return { id, secret: randomBytes(32).toString('base64url') };
}

export function formatToken(token: Token): string {
  return `${token.id}.${token.secret}`;
}

/** Parses `<id>.<secret>`; the error never echoes the input (it may be a secret). */
export function parseToken(text: string): Token {
  const dot = text.indexOf('.');
  const id = text.slice(0, dot);
  const secret = text.slice(dot + 1);
  if (dot < 0 || !ID_RE.test(id) || !SECRET_RE.test(secret)) {
    throw new PkiError('invalid_token', 'token is not of the form <id>.<secret>');
  }
  return { id, secret };
}

/** What is stored: SHA-256 of the secret (the secret has 256 bits of entropy, so no slow KDF is needed). */
export function hashTokenSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function tokenSecretMatches(secret: string, storedHash: Buffer): boolean {
  const presented = hashTokenSecret(secret);
  return presented.length === storedHash.length && timingSafeEqual(presented, storedHash);
}
