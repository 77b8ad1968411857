import { Code, ConnectError } from '@connectrpc/connect';

/** "InvalidArgument" → "invalid argument". */
const codeName = (code: Code) => (Code[code] ?? `code ${code}`).replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();

/**
 * One line for an error a command ended with: what went wrong and, where it helps, what to do.
 * `address`: the controller the command tried, for "cannot reach it".
 */
export function describeCliError(err: unknown, address: string | null): string {
  if (err instanceof ConnectError) {
    if (err.code === Code.Unavailable || err.code === Code.DeadlineExceeded) {
      return `cannot reach the controller at ${address ?? 'the recorded address'} (${err.rawMessage}): is it running? Start one with \`vigil-controller --listen ${address ?? 'HOST:PORT'}\`, or pass --controller HOST:PORT`;
    }
    return `${err.rawMessage} (${codeName(err.code)})`;
  }
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0]!;
}
