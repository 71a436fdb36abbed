// The credential helper's rules with exact results: who is covered, one binding per chain (both hops count), and
// the per-namespace specs cache, bounded at 20,000 namespaces.
import { describe, expect, it } from 'vitest';
import { credentialHelper, helperBindings } from '../../src/acr/credential-helper.js';
import type { RegistryConfig } from '../../src/config/config.js';

const SVC = 'acs:ram::1234567890123456:role/svc';
const USR1 = 'acs:ram::6543210987654321:role/user-one';
const USR2 = 'acs:ram::6543210987654321:role/user-two';

const registries: RegistryConfig[] = [
  { edition: 'enterprise', instanceId: 'cri-a', region: 'cn-beijing', chain: { serviceArn: SVC, userArn: USR1 } },
  { edition: 'enterprise', instanceId: 'cri-b', region: 'cn-beijing', domains: ['b.example.com'], chain: { serviceArn: SVC, userArn: USR2 } },
  { edition: 'enterprise', instanceId: 'cri-c', region: 'cn-beijing', chain: { serviceArn: SVC, userArn: USR1 } },
  { edition: 'personal', region: 'cn-shanghai', domains: ['pe.example.com'], chain: {} },
];

describe('helperBindings', () => {
  it('one binding per (service, user) chain, in first-seen order; listed domains kept, Personal Edition ones as given', () => {
    expect(helperBindings(registries)).toEqual([
      {
        chain: { serviceArn: SVC, userArn: USR1 },
        registries: [
          { kind: 'instance', instanceId: 'cri-a', region: 'cn-beijing' },
          { kind: 'instance', instanceId: 'cri-c', region: 'cn-beijing' },
        ],
      },
      { chain: { serviceArn: SVC, userArn: USR2 }, registries: [{ kind: 'instance', instanceId: 'cri-b', region: 'cn-beijing', domains: ['b.example.com'] }] },
      { chain: {}, registries: [{ kind: 'personal', region: 'cn-shanghai', domains: ['pe.example.com'] }] },
    ]);
    expect(helperBindings([])).toEqual([]);
    // Two service ARNs without user ARNs are two chains too.
    const other = 'acs:ram::1234567890123456:role/other';
    expect(
      helperBindings([
        { edition: 'enterprise', instanceId: 'cri-a', region: 'cn-beijing', chain: { serviceArn: SVC } },
        { edition: 'enterprise', instanceId: 'cri-b', region: 'cn-beijing', chain: { serviceArn: other } },
      ]).map((b) => b.chain),
    ).toEqual([{ serviceArn: SVC }, { serviceArn: other }]);
  });
});

describe('credentialHelper', () => {
  const scope = { serviceAccounts: ['default', 'builder'], namespaces: ['team-a'] } as const;

  it('covers listed ServiceAccounts of listed namespaces, never an excluded namespace, and nothing without bindings', () => {
    const h = credentialHelper(scope, helperBindings(registries), 900_000, (ns) => ns === 'team-a-excluded');
    expect([h.covers('team-a', 'default'), h.covers('team-a', 'builder'), h.covers('team-a', 'other'), h.covers('team-b', 'default')]).toEqual([true, true, false, false]);
    expect(h.expiringThresholdMs).toBe(900_000);
    const all = credentialHelper({ serviceAccounts: '*', namespaces: 'all' }, helperBindings(registries), 1, (ns) => ns === 'kube-system');
    expect([all.covers('x', 'y'), all.covers('kube-system', 'default')]).toEqual([true, false]);
    expect(credentialHelper({ serviceAccounts: '*', namespaces: 'all' }, [], 1, () => false).covers('x', 'y')).toBe(false);
  });

  it('specs: one per binding, named by the binding, requested by the namespace itself; cached, and the cache emptied at 20,000 namespaces', () => {
    const h = credentialHelper(scope, helperBindings(registries), 1, () => false);
    const a = h.specs('team-a');
    expect(a.map((s) => [s.namespace, s.requester, s.binding.chain])).toEqual([
      ['team-a', 'team-a', { serviceArn: SVC, userArn: USR1 }],
      ['team-a', 'team-a', { serviceArn: SVC, userArn: USR2 }],
      ['team-a', 'team-a', {}],
    ]);
    expect(new Set(a.map((s) => s.name)).size).toBe(3);
    expect(h.specs('team-b').map((s) => s.name)).toEqual(a.map((s) => s.name));
    expect(h.specs('team-a')).toBe(a);
    // 'team-a' and 'team-b' plus 19,998 more: 20,000 cached, 'team-a' still among them.
    for (let i = 0; i < 19_998; i++) h.specs(`ns-${i}`);
    expect(h.specs('team-a')).toBe(a);
    // The next new namespace empties the cache first: 'team-a' is built again.
    h.specs('one-more');
    const again = h.specs('team-a');
    expect(again).not.toBe(a);
    expect(again).toEqual(a);
  });
});
