// RAM GetRole: the trust policy document, and a response without one.
import { describe, expect, it } from 'vitest';
import { CloudError } from '../../src/cloud/errors.js';
import { getRoleTrustPolicy } from '../../src/cloud/ram.js';
import type { CloudCaller } from '../../src/cloud/rpc.js';

const CREDS = { accessKeyId: 'LTAI5tRamTestKey00000001', accessKeySecret: 'ram-test-secret' };

function stub(answer: unknown) {
  const calls: unknown[][] = [];
  const caller = { rpc: async (...args: unknown[]) => (calls.push(args), answer) } as unknown as CloudCaller;
  return { caller, calls };
}

describe('getRoleTrustPolicy', () => {
  it('asks GetRole (2015-05-01) for the role and returns its AssumeRolePolicyDocument', async () => {
    const { caller, calls } = stub({ Role: { AssumeRolePolicyDocument: '{"Statement":[]}' }, RequestId: 'R1' });
    const budget = { deadline: 123 };
    expect(await getRoleTrustPolicy(caller, 'https://ram.example.test', CREDS, 'reader', budget)).toBe('{"Statement":[]}');
    expect(calls).toEqual([['https://ram.example.test', '2015-05-01', CREDS, 'GetRole', { RoleName: 'reader' }, budget]]);
  });

  it('a response without the document is a BadResponse of GetRole that a retry will not fix', async () => {
    for (const answer of [{ RequestId: 'R2' }, { Role: {}, RequestId: 'R2' }, { Role: { AssumeRolePolicyDocument: 7 }, RequestId: 'R2' }]) {
      const err = await getRoleTrustPolicy(stub(answer).caller, 'https://ram.example.test', CREDS, 'reader', { deadline: 0 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CloudError);
      expect(err).toMatchObject({ api: 'GetRole', code: 'BadResponse', retryable: false, requestId: 'R2', message: 'GetRole failed: BadResponse (request R2)' });
    }
  });
});
