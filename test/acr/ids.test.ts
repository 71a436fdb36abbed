// The identifier shapes at their limits: each bound of each pattern is tried on both sides (the longest accepted,
// one more refused), with a valid value wrapped in junk for the anchors, and the letter case each class allows.
// test/acr/registry-hosts.test.ts holds the everyday accepted and refused examples.
import { beforeEach, describe, expect, it, vi } from 'vitest';

type Ids = typeof import('../../src/acr/ids.js');
let APSARA_INSTANCE_ID: Ids['APSARA_INSTANCE_ID'];
let INSTANCE_ID: RegExp;
let OIDC_PROVIDER_ARN: RegExp;
let REGION: RegExp;
let ROLE_ARN: RegExp;

beforeEach(async () => {
  // Loaded per test: the patterns are built when the module loads.
  vi.resetModules();
  ({ APSARA_INSTANCE_ID, INSTANCE_ID, OIDC_PROVIDER_ARN, REGION, ROLE_ARN } = await import('../../src/acr/ids.js'));
});

const accepts = (re: RegExp, values: string[]) => expect(values.filter((v) => !re.test(v))).toEqual([]);
const refuses = (re: RegExp, values: string[]) => expect(values.filter((v) => re.test(v))).toEqual([]);

describe('REGION', () => {
  it('a first part of 2 to 8 letters', () => {
    accepts(REGION, ['cn-beijing', 'abcdefgh-1']);
    refuses(REGION, ['c-beijing', 'abcdefghi-1']);
  });

  it('later parts of 1 to 20 letters or digits, 1 to 4 of them', () => {
    accepts(REGION, [`cn-${'a'.repeat(20)}`, `cn-${'9'.repeat(20)}`, 'cn-a-b-c-d', 'cn-1']);
    refuses(REGION, [`cn-${'a'.repeat(21)}`, 'cn-a-b-c-d-e', 'cn', 'cn-', 'cn--a']);
  });

  it('the whole text: junk before or after a region is refused', () => {
    refuses(REGION, ['Xcn-beijing', ' cn-beijing', 'cn-beijing ', 'cn-beijing/x', 'cn-beijing_1']);
  });
});

describe('INSTANCE_ID', () => {
  it('cri- and 1 to 60 lower-case letters or digits, the whole text', () => {
    accepts(INSTANCE_ID, ['cri-a', `cri-${'a'.repeat(60)}`, `cri-${'0'.repeat(60)}`]);
    refuses(INSTANCE_ID, [`cri-${'a'.repeat(61)}`, 'cri-a-b', 'cri-a.b', 'x-cri-a', 'cri-a ', 'CRI-a']);
  });

  it('Apsara Stack\'s one instance is "default"', () => {
    expect(APSARA_INSTANCE_ID).toBe('default');
  });
});

describe('ROLE_ARN', () => {
  it('an account ID of 1 to 20 digits', () => {
    accepts(ROLE_ARN, ['acs:ram::1:role/r', `acs:ram::${'1'.repeat(20)}:role/r`]);
    refuses(ROLE_ARN, [`acs:ram::${'1'.repeat(21)}:role/r`, 'acs:ram:::role/r', 'acs:ram::12a:role/r']);
  });

  it('a role name of 1 to 64 letters (either case), digits, "." and "-"', () => {
    accepts(ROLE_ARN, [`acs:ram::1:role/${'r'.repeat(64)}`, 'acs:ram::1:role/AliyunCSDefaultRole', 'acs:ram::1:role/ACR-Pull.V2']);
    refuses(ROLE_ARN, [`acs:ram::1:role/${'r'.repeat(65)}`, 'acs:ram::1:role/a_b', 'acs:ram::1:role/a/b', 'acs:ram::1:role/a b']);
  });

  it('the whole text, and the account and name as its two groups', () => {
    refuses(ROLE_ARN, [' acs:ram::1:role/r', 'acs:ram::1:role/r ', 'xacs:ram::1:role/r', 'acs:ram::1:role/r:x']);
    expect([...ROLE_ARN.exec('acs:ram::1234567890123456:role/AliyunCSDefaultRole')!]).toEqual([
      'acs:ram::1234567890123456:role/AliyunCSDefaultRole',
      '1234567890123456',
      'AliyunCSDefaultRole',
    ]);
  });
});

describe('OIDC_PROVIDER_ARN', () => {
  it('an account ID of 1 to 20 digits', () => {
    accepts(OIDC_PROVIDER_ARN, ['acs:ram::1:oidc-provider/p', `acs:ram::${'1'.repeat(20)}:oidc-provider/p`]);
    refuses(OIDC_PROVIDER_ARN, [`acs:ram::${'1'.repeat(21)}:oidc-provider/p`, 'acs:ram:::oidc-provider/p', 'acs:ram::1x:oidc-provider/p']);
  });

  it('a provider name of 1 to 128 letters (either case), digits, ".", "_" and "-"', () => {
    accepts(OIDC_PROVIDER_ARN, ['acs:ram::1:oidc-provider/ACK-RRSA_c1.X', `acs:ram::1:oidc-provider/${'P'.repeat(128)}`]);
    refuses(OIDC_PROVIDER_ARN, [`acs:ram::1:oidc-provider/${'P'.repeat(129)}`, 'acs:ram::1:oidc-provider/a/b', 'acs:ram::1:oidc-provider/a:b']);
  });

  it('the whole text', () => {
    refuses(OIDC_PROVIDER_ARN, [' acs:ram::1:oidc-provider/p', 'acs:ram::1:oidc-provider/p ', 'arn:acs:ram::1:oidc-provider/p']);
  });
});
