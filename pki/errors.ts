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
  | 'file_exists';

export class PkiError extends Error {
  override readonly name = 'PkiError';
  constructor(
    readonly code: PkiErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
