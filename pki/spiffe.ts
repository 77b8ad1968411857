/** SPIFFE IDs that Vigil issues: one per agent, one per operator. */
export type Identity =
  | { readonly kind: 'agent'; readonly trustDomain: string; readonly id: string }
  | { readonly kind: 'admin'; readonly trustDomain: string; readonly id: string };

const NAME_RE = /^[A-Za-z0-9._-]{1,128}$/;

export function agentSpiffeId(trustDomain: string, agentId: string): string {
  return `spiffe://${trustDomain}/agent/${agentId}`;
}

export function adminSpiffeId(trustDomain: string, name: string): string {
  return `spiffe://${trustDomain}/admin/${name}`;
}

/** Parses `spiffe://<td>/(agent|admin)/<name>`; anything else is null. */
export function parseSpiffeId(uri: string): Identity | null {
  const m = /^spiffe:\/\/([a-z0-9.-]+)\/(agent|admin)\/([^/]+)$/.exec(uri);
  if (!m || !NAME_RE.test(m[3]!)) return null;
  return { kind: m[2] as 'agent' | 'admin', trustDomain: m[1]!, id: m[3]! };
}

export function isValidName(name: string): boolean {
  return NAME_RE.test(name);
}
