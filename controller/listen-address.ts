import { ControllerError } from './errors.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses HOST:PORT (IPv6 as [::1]:PORT); port 0 asks the OS for a free port. */
export function parseHostPort(text: string, what: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ControllerError('invalid_argument', `${what}: expected HOST:PORT, got "${text}"`);
  return { host: (m[1] ?? m[2])!, port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}
