// Whether a private key belongs to a certificate, for any key type. Node's setSecureContext only rejects a
// mismatched pair of the same key type: an RSA certificate with an EC key is accepted, and every handshake
// then fails. Comparing the public key derived from the private key with the certificate's catches all of them.
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';

/** Undefined when `key` is the private key of `cert` (PEM; the first certificate of a chain); else why not. */
export function certificatePairProblem(key: Buffer, cert: Buffer): string | undefined {
  let fromKey: Buffer;
  try {
    fromKey = createPublicKey(createPrivateKey(key)).export({ type: 'spki', format: 'der' });
  } catch (e) {
    return `the private key cannot be read (${(e as NodeJS.ErrnoException).code ?? 'invalid'})`;
  }
  let fromCert: Buffer;
  try {
    fromCert = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' });
  } catch (e) {
    return `the certificate cannot be read (${(e as NodeJS.ErrnoException).code ?? 'invalid'})`;
  }
  return fromKey.equals(fromCert) ? undefined : 'the private key does not belong to the certificate';
}
