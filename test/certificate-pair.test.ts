// certificatePairProblem's answer when node:crypto fails without an error code: the reason reads "invalid".
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

beforeEach(() => {
  vi.resetModules();
});
afterEach(() => {
  vi.doUnmock('node:crypto');
});

describe('certificatePairProblem, errors without a code', () => {
  it('a private key that fails to load without a code', async () => {
    vi.doMock('node:crypto', async (orig) => ({
      ...(await orig<typeof import('node:crypto')>()),
      createPrivateKey: () => {
        throw new Error('no code here');
      },
    }));
    const { certificatePairProblem } = await import('../src/certificate-pair.js');
    expect(certificatePairProblem(Buffer.from('k'), Buffer.from('c'))).toBe('the private key cannot be read (invalid)');
  });

  it('a certificate that fails to load without a code', async () => {
    vi.doMock('node:crypto', async (orig) => {
      const real = await orig<typeof import('node:crypto')>();
      return {
        ...real,
        createPrivateKey: () => real.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey,
        X509Certificate: class {
          constructor() {
            throw new Error('no code here');
          }
        },
      };
    });
    const { certificatePairProblem } = await import('../src/certificate-pair.js');
    expect(certificatePairProblem(Buffer.from('k'), Buffer.from('c'))).toBe('the certificate cannot be read (invalid)');
  });
});
