// Random identifiers in the shapes the real services use.
import { createHash, randomBytes, randomUUID } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Uniform alphanumerics (rejection sampling keeps the distribution flat). */
export function randomAlnum(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += ALNUM[byte % 62];
    }
  }
  return out;
}

/** RequestId as the gateway prints it: upper-case UUID. */
export function newRequestId(): string {
  return randomUUID().toUpperCase();
}

/** A stable numeric RoleId (17-19 digits in the wild) derived from the role ARN. */
export function derivedRoleId(normalizedArn: string): string {
  const n = BigInt(`0x${createHash('sha256').update(normalizedArn).digest('hex').slice(0, 16)}`);
  return (300000000000000000n + (n % 99999999999999999n)).toString();
}
