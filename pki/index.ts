export { PkiError, type PkiErrorCode } from './errors.js';
export { generateKeyPair, generateP256KeyPair, type KeyPairPem } from './keys.js';
export { spkiPin, spkiFingerprint, isValidPin } from './pin.js';
export { agentSpiffeId, adminSpiffeId, parseSpiffeId, isValidName, type Identity } from './spiffe.js';
export { generateToken, formatToken, parseToken, hashTokenSecret, tokenSecretMatches, type Token } from './token.js';
export { formatJoinString, parseJoinString, type JoinInfo } from './join-string.js';
export { writeSecretFile, writePublicFile, readSecretFile, encryptPrivateKey, decryptPrivateKey } from './key-files.js';
export {
  createCa,
  createCertificateAuthority,
  type CaMaterial,
  type CertificateAuthority,
  type IssuedCertificate,
} from './certificate-authority.js';
export { createCsr, verifyCsr, MAX_CSR_PEM_BYTES } from './csr.js';
