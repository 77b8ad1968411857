/** Codes of the errors the PKI raises; callers branch on these, never on message text. */
export type PkiErrorCode =
  | 'invalid_pem'
  | 'csr_too_large'
  | 'csr_malformed'
  | 'csr_bad_signature'
  | 'csr_weak_key'
  | 'invalid_token'
  | 'invalid_join_string'
  | 'pin_mismatch'
  | 'insecure_key_file'
  | 'key_encrypted'
  | 'file_exists';

/**
 * Base of Vigil's typed errors: a code that callers branch on (never the message text) and an
 * optional cause. Each part has its own subclass and code union.
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

export class PkiError extends VigilError<PkiErrorCode> {
  override readonly name = 'PkiError';
}
