/**
 * @grpc/grpc-js passes an IP address as the TLS server name when the controller is addressed by
 * IP, and Node then prints DEP0123 on every connection. The connection is verified against the
 * IP SAN all the same; this drops that one warning so the agent's stderr stays readable.
 */
export function silenceIpServernameWarning(): void {
  const emit = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === 'DEP0123') return;
    (emit as (...a: unknown[]) => void)(warning, ...rest);
  }) as typeof process.emitWarning;
}
