import { VigilError } from '../core/errors.js';

/** Codes of the errors the PKI raises; callers branch on these, never on message text. */
export type PkiErrorCode =
  | 'invalid_pem'
  | 'csr_too_large'
  | 'csr_malformed'
  | 'csr_bad_signature'
  | 'csr_weak_key'
  | 'csr_unsupported_key'
  | 'ca_key_mismatch'
  | 'unsupported_key'
  | 'invalid_token'
  | 'invalid_join_string'
  | 'pin_mismatch'
  | 'insecure_key_file'
  | 'key_encrypted'
  | 'file_exists';

export class PkiError extends VigilError<PkiErrorCode> {
  override readonly name = 'PkiError';
}
