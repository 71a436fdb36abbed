// Which chains open which registries, with exact bindings: annotated instances (region from the prefix, the served
// instance or the default), chains paired with instances, registries named by the images' default domains, the
// unannotated registries grouped by chain, and which hosts a registry serves.
import { beforeEach, describe, expect, it } from 'vitest';
import { annotatedBindings, BindingDenial, registriesById, servedBindings, servesHost, type BindingRules } from '../../src/acr/bindings.js';
import { buildRegistryIndex } from '../../src/acr/served-registries.js';
import { parseConfig } from '../../src/config/config.js';

const SVC = 'acs:ram::1234567890123456:role/svc';
const SVC2 = 'acs:ram::1234567890123456:role/svc2';
const IDS = 'k8s.aliyun.com/acr-instance-ids';

// Built before each test, not at collection time: Stryker then credits each test with the code it runs
// (code run while a file loads counts as static and would be tested against every test).
let configured!: ReturnType<typeof parseConfig>['registries'];
beforeEach(() => {
  configured = parseConfig(
    {
      defaultRegion: 'cn-hangzhou',
      registries: [
        { instanceId: 'cri-listed', domains: ['registry.example.com', 'mirror.example.com'] },
        { instanceId: 'cri-bj', region: 'cn-beijing', serviceArn: SVC },
        { instanceId: 'cri-bj2', region: 'cn-beijing', domains: ['bj2.example.com'], serviceArn: SVC },
        { instanceId: '', region: 'cn-shanghai', domains: ['pe.example.com', 'pe2.example.com'] },
        { instanceId: '', region: 'cn-shenzhen' },
      ],
    },
    { ownNamespace: 'x' },
  ).registries;
});

function rules(defaultRegion: string | null = 'cn-hangzhou', discovery?: { regions: string[]; personalEdition: boolean }): BindingRules {
  const registries = buildRegistryIndex({
    configured,
    lookedUp: new Map([['cn-beijing:cri-bj', ['bj-registry.cn-beijing.cr.aliyuncs.com']]]),
    discovered: [{ instanceId: 'cri-found', region: 'cn-qingdao', domains: ['found-registry.cn-qingdao.cr.aliyuncs.com'] }],
    ...(discovery ? { discovery } : {}),
  });
  return { ...(defaultRegion ? { defaultRegion } : {}), registries, registryById: registriesById(registries) };
}

describe('annotatedBindings with instance IDs', () => {
  it('region from the prefix, else the served instance of that ID, else the default; served domains only in the same region', () => {
    const r = rules();
    expect(annotatedBindings([{}], [{ instanceId: 'cri-bj' }, { instanceId: 'cri-other' }, { instanceId: 'cri-listed', region: 'cn-beijing' }, { instanceId: 'cri-listed' }], [], r)).toEqual([
      {
        chain: {},
        registries: [
          { kind: 'instance', instanceId: 'cri-bj', region: 'cn-beijing', domains: ['bj-registry.cn-beijing.cr.aliyuncs.com'] },
          { kind: 'instance', instanceId: 'cri-other', region: 'cn-hangzhou' },
          { kind: 'instance', instanceId: 'cri-listed', region: 'cn-beijing' },
          { kind: 'instance', instanceId: 'cri-listed', region: 'cn-hangzhou', domains: ['registry.example.com', 'mirror.example.com'] },
        ],
      },
    ]);
  });

  it('one chain for all instances, or one chain per instance by position', () => {
    const r = rules();
    const a = { instanceId: 'cri-a', region: 'cn-beijing' };
    const b = { instanceId: 'cri-b', region: 'cn-beijing' };
    expect(annotatedBindings([{ serviceArn: SVC }, { serviceArn: SVC2 }], [a, b], [], r)).toEqual([
      { chain: { serviceArn: SVC }, registries: [{ kind: 'instance', instanceId: 'cri-a', region: 'cn-beijing' }] },
      { chain: { serviceArn: SVC2 }, registries: [{ kind: 'instance', instanceId: 'cri-b', region: 'cn-beijing' }] },
    ]);
  });

  it('without any region: a denial naming the annotation and both fixes', () => {
    let err: unknown;
    try {
      annotatedBindings([{}], [{ instanceId: 'cri-x' }], [], rules(null), 'k8s.aliyun.com/acr-instance-id');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BindingDenial);
    expect((err as BindingDenial).noAcrImage).toBe(false);
    expect((err as Error).message).toBe(
      'k8s.aliyun.com/acr-instance-id: "cri-x" has no region prefix and acr-pull-webhook has no default region: write it as ' +
        '<region>:cri-x (e.g. cn-beijing:cri-x), or ask the cluster operator to set ALIBABA_CLOUD_REGION_ID or defaultRegion',
    );
    // The served instance's region is enough.
    expect(annotatedBindings([{}], [{ instanceId: 'cri-bj' }], [], rules(null))[0]!.registries[0]).toMatchObject({ region: 'cn-beijing' });
  });
});

describe('annotatedBindings without instance IDs: the images name the registries', () => {
  it('configured domains name their instance or Personal Edition registry; default domains name an instance by name or a Personal region', () => {
    const images = [
      'registry.example.com/a:1',
      'mirror.example.com/b:1',
      'bj2.example.com/c:1',
      'pe2.example.com/d:1',
      'team-registry.cn-beijing.cr.aliyuncs.com/e:1',
      'team-registry-vpc.cn-beijing.cr.aliyuncs.com/f:1',
      'registry-vpc.cn-hangzhou.aliyuncs.com/g:1',
      'registry.cn-hangzhou.aliyuncs.com/h:1',
      'crpi-abc.cn-guangzhou.personal.cr.aliyuncs.com/i:1',
      'docker.io/library/nginx:1',
      'nginx',
    ];
    expect(annotatedBindings([{ serviceArn: SVC }], [], images, rules())).toEqual([
      {
        chain: { serviceArn: SVC },
        registries: [
          { kind: 'instance', instanceId: 'cri-listed', region: 'cn-hangzhou', domains: ['registry.example.com', 'mirror.example.com'] },
          { kind: 'instance', instanceId: 'cri-bj2', region: 'cn-beijing', domains: ['bj2.example.com'] },
          { kind: 'instance-name', instanceName: 'team', region: 'cn-beijing' },
          { kind: 'personal', region: 'cn-shanghai', domains: ['pe.example.com', 'pe2.example.com'] },
          { kind: 'personal', region: 'cn-hangzhou', domains: ['registry-vpc.cn-hangzhou.aliyuncs.com', 'registry.cn-hangzhou.aliyuncs.com'] },
          { kind: 'personal', region: 'cn-guangzhou', domains: ['crpi-abc.cn-guangzhou.personal.cr.aliyuncs.com'] },
        ],
      },
    ]);
  });

  it('no image on an ACR or served domain: a denial that says so, names the first image, and is marked noAcrImage', () => {
    for (const [images, first] of [
      [['docker.io/library/nginx:1', 'ghcr.io/x:1'], 'docker.io/library/nginx:1'],
      [[], '(none)'],
    ] as const) {
      let err: unknown;
      try {
        annotatedBindings([{}], [], [...images], rules());
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BindingDenial);
      expect((err as BindingDenial).noAcrImage).toBe(true);
      expect((err as Error).message).toBe(
        'ACR annotations are set but no image is on an ACR default domain (<name>-registry.<region>.cr.aliyuncs.com or a Personal ' +
          `Edition registry) and ${IDS} names no instance: for custom domains add the instance IDs (first image: "${first}")`,
      );
    }
  });
});

describe('servedBindings (no annotations)', () => {
  it('one binding per chain and origin, registries in image order, discovered ones apart; the hosts the images used', () => {
    const r = rules('cn-hangzhou', { regions: ['cn-qingdao', 'cn-wuhan'], personalEdition: false });
    const out = servedBindings(
      [
        'registry.example.com/a:1',
        'bj-registry.cn-beijing.cr.aliyuncs.com/b:1',
        'found-registry.cn-qingdao.cr.aliyuncs.com/c:1',
        'registry-vpc.cn-shenzhen.aliyuncs.com/d:1',
        'registry.cn-shenzhen.aliyuncs.com/e:1',
        'registry.cn-shenzhen.aliyuncs.com/f:1',
        'mirror.example.com/g:1',
        'docker.io/library/nginx:1',
      ],
      r,
    );
    expect(out.bindings).toEqual([
      {
        chain: {},
        registries: [
          { kind: 'instance', instanceId: 'cri-listed', region: 'cn-hangzhou', domains: ['registry.example.com', 'mirror.example.com'] },
          { kind: 'personal', region: 'cn-shenzhen', domains: ['registry-vpc.cn-shenzhen.aliyuncs.com', 'registry.cn-shenzhen.aliyuncs.com'] },
        ],
      },
      { chain: { serviceArn: SVC }, registries: [{ kind: 'instance', instanceId: 'cri-bj', region: 'cn-beijing', domains: ['bj-registry.cn-beijing.cr.aliyuncs.com'] }] },
      { chain: {}, registries: [{ kind: 'instance', instanceId: 'cri-found', region: 'cn-qingdao', domains: ['found-registry.cn-qingdao.cr.aliyuncs.com'] }] },
    ]);
    expect([...out.discovered]).toEqual([out.bindings[2]]);
    expect(out.undiscovered).toBe(false);
  });

  it('an unserved Enterprise default domain in a discovery region may be undiscovered; elsewhere, or Docker Hub, not', () => {
    const r = rules('cn-hangzhou', { regions: ['cn-wuhan'], personalEdition: false });
    expect(servedBindings(['new-registry.cn-wuhan.cr.aliyuncs.com/a:1'], r)).toEqual({ bindings: [], discovered: new Set(), undiscovered: true });
    expect(servedBindings(['new-registry.cn-xian.cr.aliyuncs.com/a:1', 'docker.io/a:1'], r).undiscovered).toBe(false);
    expect(servedBindings(['new-registry.cn-wuhan.cr.aliyuncs.com/a:1'], rules()).undiscovered).toBe(false);
    // Once true, it stays true over later images.
    expect(servedBindings(['new-registry.cn-wuhan.cr.aliyuncs.com/a:1', 'docker.io/a:1'], r).undiscovered).toBe(true);
  });
});

describe('registriesById and servesHost', () => {
  it('registriesById: the first served instance of each ID', () => {
    const byId = registriesById(rules().registries);
    expect([...byId.keys()].sort()).toEqual(['cri-bj', 'cri-bj2', 'cri-found', 'cri-listed']);
    expect(byId.get('cri-bj')).toMatchObject({ region: 'cn-beijing', origin: 'configured' });
  });

  it('servesHost: yes, no, or unknown for an instance whose domains are not known', () => {
    expect(servesHost({ kind: 'personal', region: 'cn-hangzhou', domains: ['a.example.com'] }, 'a.example.com')).toBe('yes');
    expect(servesHost({ kind: 'personal', region: 'cn-hangzhou', domains: ['a.example.com'] }, 'b.example.com')).toBe('no');
    const byName = { kind: 'instance-name' as const, instanceName: 'team', region: 'cn-beijing' };
    expect(servesHost(byName, 'team-registry.cn-beijing.cr.aliyuncs.com')).toBe('yes');
    expect(servesHost(byName, 'team-registry-vpc.cn-beijing.cr.aliyuncs.com')).toBe('yes');
    expect(servesHost(byName, 'team-registry.cn-shanghai.cr.aliyuncs.com')).toBe('no');
    expect(servesHost(byName, 'other-registry.cn-beijing.cr.aliyuncs.com')).toBe('no');
    expect(servesHost(byName, 'registry.cn-beijing.aliyuncs.com')).toBe('no');
    expect(servesHost({ kind: 'instance', instanceId: 'cri-a', region: 'cn-beijing', domains: ['a.example.com'] }, 'a.example.com')).toBe('yes');
    expect(servesHost({ kind: 'instance', instanceId: 'cri-a', region: 'cn-beijing', domains: ['a.example.com'] }, 'b.example.com')).toBe('no');
    expect(servesHost({ kind: 'instance', instanceId: 'cri-a', region: 'cn-beijing' }, 'a.example.com')).toBe('unknown');
  });
});

describe('bindings, exact keys', () => {
  it('the default annotation key in a denial is k8s.aliyun.com/acr-instance-ids', () => {
    expect(() => annotatedBindings([{}], [{ instanceId: 'cri-x' }], [], rules(null))).toThrow(
      new BindingDenial(`${IDS}: "cri-x" has no region prefix and acr-pull-webhook has no default region: write it as <region>:cri-x (e.g. cn-beijing:cri-x), or ask the cluster operator to set ALIBABA_CLOUD_REGION_ID or defaultRegion`),
    );
  });

  it('two instances named by default domains are two registries', () => {
    expect(annotatedBindings([{}], [], ['one-registry.cn-beijing.cr.aliyuncs.com/a:1', 'two-registry.cn-beijing.cr.aliyuncs.com/b:1', 'one-registry-vpc.cn-beijing.cr.aliyuncs.com/c:1'], rules())).toEqual([
      {
        chain: {},
        registries: [
          { kind: 'instance-name', instanceName: 'one', region: 'cn-beijing' },
          { kind: 'instance-name', instanceName: 'two', region: 'cn-beijing' },
        ],
      },
    ]);
  });

  it('an annotated instance whose looked-up domain list is empty gets no domains', () => {
    const registries = buildRegistryIndex({ configured, lookedUp: new Map([['cn-beijing:cri-bj', []]]) });
    expect(annotatedBindings([{}], [{ instanceId: 'cri-bj', region: 'cn-beijing' }], [], { defaultRegion: 'cn-hangzhou', registries, registryById: registriesById(registries) })).toEqual([
      { chain: {}, registries: [{ kind: 'instance', instanceId: 'cri-bj', region: 'cn-beijing' }] },
    ]);
  });

  it('served registries with different service or user ARNs get bindings of their own', () => {
    const U1 = 'acs:ram::6543210987654321:role/u1';
    const U2 = 'acs:ram::6543210987654321:role/u2';
    const chains = parseConfig(
      {
        defaultRegion: 'cn-hangzhou',
        registries: [
          { instanceId: 'cri-1', domains: ['one.example.com'], serviceArn: SVC },
          { instanceId: 'cri-2', domains: ['two.example.com'], serviceArn: SVC2 },
          { instanceId: 'cri-3', domains: ['three.example.com'], serviceArn: SVC, userArn: U1 },
          { instanceId: 'cri-4', domains: ['four.example.com'], serviceArn: SVC, userArn: U2 },
        ],
      },
      { ownNamespace: 'x' },
    ).registries;
    const registries = buildRegistryIndex({ configured: chains });
    const out = servedBindings(['one.example.com/a', 'two.example.com/b', 'three.example.com/c', 'four.example.com/d'], { registries, registryById: registriesById(registries) });
    expect(out.bindings.map((b) => [b.chain, b.registries.map((r) => (r.kind === 'instance' ? r.instanceId : r.kind))])).toEqual([
      [{ serviceArn: SVC }, ['cri-1']],
      [{ serviceArn: SVC2 }, ['cri-2']],
      [{ serviceArn: SVC, userArn: U1 }, ['cri-3']],
      [{ serviceArn: SVC, userArn: U2 }, ['cri-4']],
    ]);
  });

  it('registriesById keeps the first of two served instances with the same ID; servesHost says no for a host that is not ACR', () => {
    const twice = parseConfig({ registries: [{ instanceId: 'cri-dup', region: 'cn-beijing' }, { instanceId: 'cri-dup', region: 'cn-shanghai' }] }, { ownNamespace: 'x' }).registries;
    expect(registriesById(buildRegistryIndex({ configured: twice })).get('cri-dup')?.region).toBe('cn-beijing');
    expect(servesHost({ kind: 'instance-name', instanceName: 'team', region: 'cn-beijing' }, 'registry.example.com')).toBe('no');
  });
});


describe('bindings, Personal Edition hosts from images', () => {
  it('are sorted, whatever the order of the images, and each listed once', () => {
    const images = ['registry.cn-hangzhou.aliyuncs.com/a:1', 'registry-vpc.cn-hangzhou.aliyuncs.com/b:1', 'registry-intl.cn-hangzhou.aliyuncs.com/c:1', 'registry.cn-hangzhou.aliyuncs.com/d:1'];
    expect(annotatedBindings([{}], [], images, rules())).toEqual([
      {
        chain: {},
        registries: [
          { kind: 'personal', region: 'cn-hangzhou', domains: ['registry-intl.cn-hangzhou.aliyuncs.com', 'registry-vpc.cn-hangzhou.aliyuncs.com', 'registry.cn-hangzhou.aliyuncs.com'] },
        ],
      },
    ]);
  });
});
