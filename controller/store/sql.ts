/**
 * The one seam between Vigil's stores and a Postgres: a pg pool or embedded PGlite. Stores are
 * written once against this interface, and one conformance suite runs them on both.
 */
export interface SqlQueryable {
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

export interface Sql extends SqlQueryable {
  /** Runs fn in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /**
   * LISTEN on a channel (lower-case letters and _): onPayload gets every NOTIFY payload, from this
   * process and every other one on the same database. Notifications sent while the listening
   * connection was down are lost: onReconnect is called after it listens again, so the caller can
   * catch up from the tables. Returns the function that stops listening.
   */
  listen(channel: string, onPayload: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>>;
  /** 'postgres' (a server through pg) or 'pglite' (embedded). */
  readonly kind: 'postgres' | 'pglite';
  /** The connection pool's state (a pg pool; PGlite has one connection and no pool). */
  poolStats?(): { readonly total: number; readonly idle: number; readonly waiting: number };
}

/** Postgres returns int8 as text (pg) or number (PGlite); both become a number here. */
export function num(v: unknown): number {
  return v === null || v === undefined ? 0 : Number(v);
}

/** bytea comes back as Buffer (pg) or Uint8Array (PGlite). */
export function buf(v: unknown): Buffer | null {
  if (v === null || v === undefined) return null;
  return Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array);
}

export function date(v: unknown): Date | null {
  if (v === null || v === undefined) return null;
  return v instanceof Date ? v : new Date(v as string);
}

export function checkChannel(channel: string): string {
  if (!/^[a-z_]{1,63}$/.test(channel)) throw new Error(`invalid channel name ${channel}`);
  return channel;
}
