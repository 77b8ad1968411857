/**
 * Base of Vigil's typed errors: a code that callers branch on (never the message text) and an
 * optional cause. Each part has its own subclass and code union (pki/errors.ts,
 * agent/errors.ts, controller/errors.ts); the controller maps codes to gRPC statuses in one place.
 */
export class VigilError<C extends string> extends Error {
  constructor(
    readonly code: C,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
