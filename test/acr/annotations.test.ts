// The annotation grammar, rule by rule, with the exact result or denial each rule promises (README "Annotations").
import { beforeEach, describe, expect, it, vi } from 'vitest';

type Annotations = typeof import('../../src/acr/annotations.js');
let ANNOTATION: Annotations['ANNOTATION'];
let LIMITS: Annotations['LIMITS'];
let levenshtein: Annotations['levenshtein'];
let parseAcrAnnotations: Annotations['parseAcrAnnotations'];

beforeEach(async () => {
  // Loaded per test: the key prefixes and known keys are set when the module loads.
  vi.resetModules();
  ({ ANNOTATION, LIMITS, levenshtein, parseAcrAnnotations } = await import('../../src/acr/annotations.js'));
});

const IDS = 'k8s.aliyun.com/acr-instance-ids';
const ID = 'k8s.aliyun.com/acr-instance-id';
const SVC_KEY = 'k8s.aliyun.com/acr-service-arns';
const USR_KEY = 'k8s.aliyun.com/acr-user-arns';
const S1 = 'acs:ram::1111111111111111:role/svc-one';
const S2 = 'acs:ram::2222222222222222:role/svc-two';
const U1 = 'acs:ram::3333333333333333:role/user-one';
const U2 = 'acs:ram::4444444444444444:role/user-two';

const invalid = (message: string) => ({ kind: 'invalid', message });
/** A parse result; `instancesFrom` is the key the instances were read from (the plural one unless only the singular is given). */
const ok = (value: { chains: unknown[]; instances: unknown[] }, instancesFrom: string = IDS) => ({ kind: 'ok', value: { ...value, instancesFrom } });

describe('which objects are annotated', () => {
  it('the four keys, as the other modules read them from ANNOTATION', () => {
    expect(ANNOTATION).toEqual({ instanceIds: IDS, instanceId: ID, serviceArns: SVC_KEY, userArns: USR_KEY });
  });

  it('absent, null and vendor-free annotations mean "none"', () => {
    expect(parseAcrAnnotations(undefined)).toEqual({ kind: 'none' });
    expect(parseAcrAnnotations(null)).toEqual({ kind: 'none' });
    expect(parseAcrAnnotations({})).toEqual({ kind: 'none' });
    expect(parseAcrAnnotations({ app: 'web', 'kubernetes.io/description': 'x' })).toEqual({ kind: 'none' });
  });

  it('annotations that are not an object of strings are refused', () => {
    for (const bad of ['k8s.aliyun.com/acr-instance-ids', ['cri-abc'], 42, true]) {
      expect(parseAcrAnnotations(bad)).toEqual(invalid('metadata.annotations must be an object of strings'));
    }
  });

  it('other k8s.aliyun.com/ annotations far from the ACR keys are none of its business', () => {
    // ECI's own annotations sit under the same vendor prefix.
    expect(parseAcrAnnotations({ 'k8s.aliyun.com/eci-use-specs': '2-4Gi' })).toEqual({ kind: 'none' });
    // Four edits from acr-instance-ids: no longer a near miss.
    expect(parseAcrAnnotations({ 'k8s.aliyun.com/instance-ids': 'cri-abc' })).toEqual({ kind: 'none' });
    // Keys under another prefix are not looked at, however close.
    expect(parseAcrAnnotations({ 'k8s.aliyun.cn/acr-instance-ids': 'cri-abc' })).toEqual({ kind: 'none' });
  });

  it('an unknown acr- key is refused, whatever its distance, with the closest known key', () => {
    expect(parseAcrAnnotations({ 'k8s.aliyun.com/acr-registry-credentials': 'x' })).toEqual(
      invalid('unknown annotation "k8s.aliyun.com/acr-registry-credentials": did you mean "k8s.aliyun.com/acr-instance-ids"?'),
    );
    expect(parseAcrAnnotations({ 'k8s.aliyun.com/acr-user-arn': U1 })).toEqual(
      invalid('unknown annotation "k8s.aliyun.com/acr-user-arn": did you mean "k8s.aliyun.com/acr-user-arns"?'),
    );
  });

  it('a near miss without the acr- prefix (up to three edits) is refused too: a typo would fail silently at pull time', () => {
    expect(parseAcrAnnotations({ 'k8s.aliyun.com/arc-instance-ids': 'cri-abc' })).toEqual(
      invalid('unknown annotation "k8s.aliyun.com/arc-instance-ids": did you mean "k8s.aliyun.com/acr-instance-ids"?'),
    );
    // Exactly three edits.
    expect(parseAcrAnnotations({ 'k8s.aliyun.com/-instance-ids': 'cri-abc' })).toEqual(
      invalid('unknown annotation "k8s.aliyun.com/-instance-ids": did you mean "k8s.aliyun.com/acr-instance-ids"?'),
    );
  });

  it('on a tie the suggestion is the first known key (the plural instance key)', () => {
    // One edit from both acr-instance-ids and acr-instance-id.
    expect(parseAcrAnnotations({ 'k8s.aliyun.com/acr-instance-idx': 'cri-abc' })).toEqual(
      invalid('unknown annotation "k8s.aliyun.com/acr-instance-idx": did you mean "k8s.aliyun.com/acr-instance-ids"?'),
    );
  });

  it('lets an unexpected error through instead of turning it into a denial', () => {
    const hostile = {
      get [IDS]() {
        throw new RangeError('not an annotation problem');
      },
    };
    expect(() => parseAcrAnnotations(hostile)).toThrow(RangeError);
  });
});

describe('lists', () => {
  it('trims items, and a value must be a string', () => {
    expect(parseAcrAnnotations({ [IDS]: ' cri-aaa ,  cri-bbb' })).toStrictEqual(ok({ chains: [{}], instances: [{ instanceId: 'cri-aaa' }, { instanceId: 'cri-bbb' }] }));
    expect(parseAcrAnnotations({ [IDS]: 42 })).toEqual(invalid(`${IDS} must be a string, got "42"`));
    expect(parseAcrAnnotations({ [IDS]: undefined })).toEqual(invalid(`${IDS} must be a string, got "undefined"`));
  });

  it('an empty value and empty items are refused, naming the position', () => {
    expect(parseAcrAnnotations({ [IDS]: ' ' })).toEqual(invalid(`${IDS} is empty: remove it or give a value`));
    expect(parseAcrAnnotations({ [IDS]: ',cri-aaa' })).toEqual(invalid(`${IDS} has an empty item at position 1 in ",cri-aaa"`));
    expect(parseAcrAnnotations({ [IDS]: 'cri-aaa,' })).toEqual(invalid(`${IDS} has an empty item at position 2 in "cri-aaa,"`));
  });

  it('takes exactly 4096 characters and 32 items, and refuses one more of either', () => {
    expect(LIMITS).toEqual({ valueLength: 4096, items: 32 });
    const padded = `cri-aaa${' '.repeat(4096 - 7)}`;
    expect(padded).toHaveLength(4096);
    expect(parseAcrAnnotations({ [IDS]: padded })).toEqual(ok({ chains: [{}], instances: [{ instanceId: 'cri-aaa' }] }));
    expect(parseAcrAnnotations({ [IDS]: `${padded} ` })).toEqual(invalid(`${IDS} is 4097 characters long; the limit is 4096`));

    const ids = (n: number) => Array.from({ length: n }, (_, i) => `cri-x${i}`);
    expect(parseAcrAnnotations({ [IDS]: ids(32).join(',') })).toEqual(ok({ chains: [{}], instances: ids(32).map((instanceId) => ({ instanceId })) }));
    expect(parseAcrAnnotations({ [IDS]: ids(33).join(',') })).toEqual(invalid(`${IDS} lists 33 items; the limit is 32`));
  });
});

describe('instance IDs', () => {
  it('keeps a region prefix, and has no region field without one', () => {
    expect(parseAcrAnnotations({ [IDS]: 'cn-beijing:cri-aaa,cri-bbb' })).toStrictEqual(
      ok({ chains: [{}], instances: [{ instanceId: 'cri-aaa', region: 'cn-beijing' }, { instanceId: 'cri-bbb' }] }),
    );
    expect(parseAcrAnnotations({ [IDS]: 'cn-shanghai-finance-1:cri-aaa' })).toStrictEqual(
      ok({ chains: [{}], instances: [{ instanceId: 'cri-aaa', region: 'cn-shanghai-finance-1' }] }),
    );
  });

  it('refuses a bad region, an empty region and a bad ID with the shape expected', () => {
    expect(parseAcrAnnotations({ [IDS]: ':cri-aaa' })).toEqual(invalid(`${IDS}: "" in ":cri-aaa" is not a region ID (expected e.g. cn-beijing:cri-xxxx)`));
    expect(parseAcrAnnotations({ [IDS]: 'cn-beijing:cri-AAA' })).toEqual(
      invalid(
        `${IDS}: "cri-AAA" is not an ACR Enterprise Edition instance ID (expected cri- followed by lower-case letters and digits, ` +
          'optionally prefixed by a region: cn-beijing:cri-xxxx)',
      ),
    );
  });

  it('refuses the same instance twice', () => {
    expect(parseAcrAnnotations({ [IDS]: 'cri-aaa,cn-beijing:cri-aaa' })).toEqual(invalid(`${IDS} names instance "cri-aaa" twice`));
  });

  it('the singular key alone names one instance', () => {
    expect(parseAcrAnnotations({ [ID]: 'cn-beijing:cri-aaa' })).toStrictEqual(ok({ chains: [{}], instances: [{ instanceId: 'cri-aaa', region: 'cn-beijing' }] }, ID));
    expect(parseAcrAnnotations({ [ID]: 'cri-aaa,cri-bbb' })).toEqual(invalid(`${ID} takes exactly one instance ID; use ${IDS} for a list`));
  });

  it('the singular key must be one of the plural list; the list then decides', () => {
    expect(parseAcrAnnotations({ [IDS]: 'cri-aaa,cri-bbb', [ID]: 'cri-bbb' })).toStrictEqual(
      ok({ chains: [{}], instances: [{ instanceId: 'cri-aaa' }, { instanceId: 'cri-bbb' }] }),
    );
    // A region on one side only still agrees.
    expect(parseAcrAnnotations({ [IDS]: 'cn-beijing:cri-aaa', [ID]: 'cri-aaa' }).kind).toBe('ok');
    expect(parseAcrAnnotations({ [IDS]: 'cri-aaa', [ID]: 'cn-beijing:cri-aaa' }).kind).toBe('ok');
    expect(parseAcrAnnotations({ [IDS]: 'cn-beijing:cri-aaa', [ID]: 'cn-beijing:cri-aaa' }).kind).toBe('ok');
    expect(parseAcrAnnotations({ [IDS]: 'cn-beijing:cri-aaa', [ID]: 'cn-shanghai:cri-aaa' })).toEqual(
      invalid(`${ID} "cn-shanghai:cri-aaa" is not in ${IDS}: remove the older singular annotation or list the same instance in both`),
    );
    expect(parseAcrAnnotations({ [IDS]: 'cri-aaa', [ID]: 'cri-bbb' })).toEqual(
      invalid(`${ID} "cri-bbb" is not in ${IDS}: remove the older singular annotation or list the same instance in both`),
    );
  });
});

describe('credential chains', () => {
  it('no ARN: one chain, the webhook\'s own identity; service ARNs alone: one chain each', () => {
    expect(parseAcrAnnotations({ [IDS]: 'cri-aaa' })).toStrictEqual(ok({ chains: [{}], instances: [{ instanceId: 'cri-aaa' }] }));
    expect(parseAcrAnnotations({ [SVC_KEY]: S1 })).toStrictEqual(ok({ chains: [{ serviceArn: S1 }], instances: [] }, ID));
  });

  it('N user ARNs pair with N service ARNs by position', () => {
    expect(parseAcrAnnotations({ [IDS]: 'cri-aaa,cri-bbb', [SVC_KEY]: `${S1},${S2}`, [USR_KEY]: `${U1},${U2}` })).toStrictEqual(
      ok({
        chains: [
          { serviceArn: S1, userArn: U1 },
          { serviceArn: S2, userArn: U2 },
        ],
        instances: [{ instanceId: 'cri-aaa' }, { instanceId: 'cri-bbb' }],
      }),
    );
  });

  it('one service ARN serves every user ARN', () => {
    expect(parseAcrAnnotations({ [IDS]: 'cri-aaa,cri-bbb', [SVC_KEY]: S1, [USR_KEY]: `${U1},${U2}` })).toStrictEqual(
      ok({
        chains: [
          { serviceArn: S1, userArn: U1 },
          { serviceArn: S1, userArn: U2 },
        ],
        instances: [{ instanceId: 'cri-aaa' }, { instanceId: 'cri-bbb' }],
      }),
    );
  });

  it('refuses user ARNs without service ARNs, and other count mismatches, saying what to change', () => {
    expect(parseAcrAnnotations({ [USR_KEY]: U1 })).toEqual(
      invalid(
        `${USR_KEY} needs ${SVC_KEY}: the user role is assumed with the service role's credentials, so add the RAM role of ` +
          "the workload's account that the user role trusts",
      ),
    );
    expect(parseAcrAnnotations({ [IDS]: 'cri-aaa,cri-bbb,cri-ccc', [SVC_KEY]: `${S1},${S2}`, [USR_KEY]: `${U1},${U2},${U1}` })).toEqual(
      invalid(`${SVC_KEY} lists 2 ARNs but ${USR_KEY} lists 3: give one service ARN for all user ARNs, or exactly one service ARN per user ARN (paired by position)`),
    );
  });

  it('refuses a malformed ARN with the expected shape', () => {
    expect(parseAcrAnnotations({ [SVC_KEY]: 'acs:ram::123:role/' })).toEqual(
      invalid(`${SVC_KEY}: "acs:ram::123:role/" is not a RAM role ARN (expected acs:ram::<account id>:role/<role name>, the role name 1-64 letters, digits, "." or "-")`),
    );
  });

  it('chains pair with instances: one for all, or one each; several need instance IDs', () => {
    expect(parseAcrAnnotations({ [IDS]: 'cri-aaa,cri-bbb,cri-ccc', [SVC_KEY]: `${S1},${S2}` })).toEqual(
      invalid(`2 credential chains (${SVC_KEY}) but 3 instance IDs in ${IDS}: give one chain for all instances, or one chain per instance (paired by position in ${IDS})`),
    );
    expect(parseAcrAnnotations({ [SVC_KEY]: `${S1},${S2}` })).toEqual(
      invalid(`2 credential chains (${SVC_KEY}) but no ${IDS}: name the instance each chain is for, in the same order`),
    );
    expect(parseAcrAnnotations({ [IDS]: 'cri-aaa,cri-bbb,cri-ccc', [SVC_KEY]: S1 }).kind).toBe('ok');
    // The denial names the keys to edit: both ARN keys when user ARNs are given, and the singular instance key when
    // the instance came from it.
    expect(parseAcrAnnotations({ [ID]: 'cri-aaa', [SVC_KEY]: `${S1},${S2}`, [USR_KEY]: `${U1},${U2}` })).toEqual(
      invalid(`2 credential chains (${SVC_KEY}, ${USR_KEY}) but 1 instance IDs in ${ID}: give one chain for all instances, or one chain per instance (paired by position in ${IDS})`),
    );
    expect(parseAcrAnnotations({ [SVC_KEY]: `${S1},${S2}`, [USR_KEY]: `${U1},${U2}` })).toEqual(
      invalid(`2 credential chains (${SVC_KEY}, ${USR_KEY}) but no ${IDS}: name the instance each chain is for, in the same order`),
    );
  });
});

describe('levenshtein (capped edit distance)', () => {
  it('gives the textbook distances', () => {
    expect(levenshtein('kitten', 'sitting', 8)).toBe(3);
    expect(levenshtein('flaw', 'lawn', 8)).toBe(2);
    expect(levenshtein('abc', 'abc', 8)).toBe(0);
    expect(levenshtein('abc', 'ab', 8)).toBe(1);
    expect(levenshtein('ab', 'abc', 8)).toBe(1);
    expect(levenshtein('', 'abc', 8)).toBe(3);
    expect(levenshtein('abc', '', 8)).toBe(3);
  });

  it('returns cap + 1 as soon as the distance exceeds the cap, and the distance when it equals the cap', () => {
    expect(levenshtein('abcdefgh', '', 8)).toBe(8);
    expect(levenshtein('', 'x'.repeat(20), 8)).toBe(9);
    expect(levenshtein('x'.repeat(20), '', 8)).toBe(9);
    expect(levenshtein('abc', 'xyz', 3)).toBe(3);
    expect(levenshtein('a'.repeat(12), 'b'.repeat(12), 3)).toBe(4);
  });
});
