// Secret names are a contract between processes: every replica, every version and a dry run must derive the same
// name from the same binding, or Pods would reference Secrets nobody keeps fresh. The expected names are literals.
import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Binding } from '../../src/acr/model.js';

type SecretName = typeof import('../../src/acr/secret-name.js');
let bindingKey: SecretName['bindingKey'];
let cachedNameCount: SecretName['cachedNameCount'];
let secretNameFor: SecretName['secretNameFor'];

beforeEach(async () => {
  // Loaded per test: the prefix and the caches are set up when the module loads, and each test starts with empty caches.
  vi.resetModules();
  ({ bindingKey, cachedNameCount, secretNameFor } = await import('../../src/acr/secret-name.js'));
});

const S = 'acs:ram::1234567890123456:role/acr-pull';
const U = 'acs:ram::6543210987654321:role/registry-reader';

describe('secretNameFor', () => {
  it('gives the same golden name for the same binding, for each kind of registry and chain', () => {
    const own: Binding = { chain: {}, registries: [{ kind: 'instance', instanceId: 'cri-abc123def4567890' }] };
    const svc: Binding = { chain: { serviceArn: S }, registries: [{ kind: 'instance-name', instanceName: 'myreg', region: 'cn-hangzhou' }] };
    const chain: Binding = {
      chain: { serviceArn: S, userArn: U },
      registries: [{ kind: 'instance', instanceId: 'cri-abc123def4567890', region: 'cn-beijing', domains: ['registry.example.com', 'images.example.org'] }],
    };
    const personal: Binding = {
      chain: { serviceArn: S },
      registries: [{ kind: 'personal', region: 'cn-hangzhou', domains: ['registry.cn-hangzhou.aliyuncs.com', 'crpi-abc123.cn-hangzhou.personal.cr.aliyuncs.com'] }],
    };
    expect(secretNameFor(own)).toBe('acr-pull-9e97ff8af6bbd0ba6abb');
    expect(secretNameFor(svc)).toBe('acr-pull-b8b97bb81a824cf1ce73');
    expect(secretNameFor(chain)).toBe('acr-pull-bb5826e0d46df72490b1');
    expect(secretNameFor(personal)).toBe('acr-pull-22da6d64abc45879fe33');
    // A copy of the same binding (another request, another process) gives the same name.
    expect(secretNameFor(structuredClone(chain))).toBe('acr-pull-bb5826e0d46df72490b1');
  });

  it('is "acr-pull-" and the first 20 hex digits of the SHA-256 of the canonical binding text', () => {
    const b: Binding = { chain: { serviceArn: S, userArn: U }, registries: [{ kind: 'instance', instanceId: 'cri-abc123def4567890', region: 'cn-beijing', domains: ['b.example.com', 'a.example.com'] }] };
    const canonical = '["acs:ram::1234567890123456:role/acr-pull","acs:ram::6543210987654321:role/registry-reader",["i:cn-beijing:cri-abc123def4567890:a.example.com,b.example.com"]]';
    expect(bindingKey(b)).toBe(canonical);
    expect(secretNameFor(b)).toBe(`acr-pull-${createHash('sha256').update(canonical).digest('hex').slice(0, 20)}`);
    expect(bindingKey({ chain: {}, registries: [{ kind: 'instance-name', instanceName: 'myreg', region: 'cn-hangzhou' }, { kind: 'personal', region: 'cn-beijing', domains: ['z.example', 'y.example'] }] })).toBe(
      '["","",["n:cn-hangzhou:myreg","p:cn-beijing:y.example,z.example"]]',
    );
  });

  it('ignores the order of registries and of domains, and tells every field apart', () => {
    const r1 = { kind: 'instance' as const, instanceId: 'cri-aaa', region: 'cn-beijing', domains: ['x.example.com', 'y.example.com'] };
    const r2 = { kind: 'personal' as const, region: 'cn-hangzhou', domains: ['registry.cn-hangzhou.aliyuncs.com', 'registry-vpc.cn-hangzhou.aliyuncs.com'] };
    const base = secretNameFor({ chain: { serviceArn: S }, registries: [r1, r2] });
    expect(secretNameFor({ chain: { serviceArn: S }, registries: [r2, r1] })).toBe(base);
    expect(secretNameFor({ chain: { serviceArn: S }, registries: [{ ...r1, domains: ['y.example.com', 'x.example.com'] }, { ...r2, domains: [...r2.domains].reverse() }] })).toBe(base);
    const others = [
      { chain: {}, registries: [r1, r2] },
      { chain: { serviceArn: S, userArn: U }, registries: [r1, r2] },
      { chain: { serviceArn: U }, registries: [r1, r2] },
      { chain: { serviceArn: S }, registries: [r1] },
      { chain: { serviceArn: S }, registries: [{ ...r1, region: 'cn-shanghai' }, r2] },
      { chain: { serviceArn: S }, registries: [{ ...r1, domains: ['x.example.com'] }, r2] },
      { chain: { serviceArn: S }, registries: [{ kind: 'instance' as const, instanceId: 'cri-aaa' }, r2] },
    ];
    const names = others.map(secretNameFor);
    expect(new Set([base, ...names]).size).toBe(others.length + 1);
  });

  it('keeps at most 2,000 names cached, and a name already cached costs no eviction', () => {
    const binding = (i: number): Binding => ({ chain: {}, registries: [{ kind: 'instance', instanceId: `cri-cache${i}` }] });
    for (let i = 0; i < 2500; i++) secretNameFor(binding(i));
    expect(cachedNameCount()).toBe(2000);
    const last = secretNameFor(binding(2499));
    expect(cachedNameCount()).toBe(2000);
    // Evicted names come back the same.
    expect(secretNameFor(binding(0))).toBe(secretNameFor(structuredClone(binding(0))));
    expect(last).toMatch(/^acr-pull-[0-9a-f]{20}$/);
  });
});
