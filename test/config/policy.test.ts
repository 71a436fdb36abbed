// checkPolicy where "every" and "some" differ: a registry with several hosts needs each of them allowed by the
// same rule, and a denial blames a role only when no applicable rule allows it. Also the key of an instance
// without any region (it matches no entry, and the denial names the bare ID).
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Binding } from '../../src/acr/model.js';
import type { Policy } from '../../src/config/policy.js';

type PolicyModule = typeof import('../../src/config/policy.js');
let checkPolicy: PolicyModule['checkPolicy'];
let selectorMatches: PolicyModule['selectorMatches'];

beforeEach(async () => {
  // Loaded per test: the list check (allows) is defined when the module loads.
  vi.resetModules();
  ({ checkPolicy, selectorMatches } = await import('../../src/config/policy.js'));
});

const SVC = 'acs:ram::1234567890123456:role/svc';
const USR = 'acs:ram::6543210987654321:role/usr';
const msg = (ns: string, rules: string, what: string) =>
  `forbidden by the acr-pull-webhook policy for namespace ${ns} (${rules} apply): ${what}; ask the cluster operator to extend the policy`;
const personal = { kind: 'personal' as const, region: 'cn-hangzhou', domains: ['p.example.com', 'q.example.com'] };

describe('checkPolicy: every host of a registry, from one rule', () => {
  it('a Personal Edition registry with two hosts is denied when a rule allows only one of them', () => {
    const policy: Policy = { rules: [{ name: 'p-only', namespaces: { names: ['team'] }, instances: ['p.example.com'] }] };
    const binding: Binding = { chain: {}, registries: [personal] };
    expect(checkPolicy(policy, 'team', undefined, binding, undefined)).toEqual({
      allowed: false,
      message: msg('team', 'rules p-only', 'registry p.example.com, q.example.com is not allowed'),
    });
  });

  it('allowed once the same rule lists both hosts; two rules listing one host each are not enough', () => {
    const both: Policy = { rules: [{ name: 'pq', namespaces: { names: ['team'] }, instances: ['q.example.com', 'p.example.com'] }] };
    expect(checkPolicy(both, 'team', undefined, { chain: {}, registries: [personal] }, undefined)).toEqual({ allowed: true });
    const split: Policy = {
      rules: [
        { name: 'p', namespaces: { names: ['team'] }, instances: ['p.example.com'] },
        { name: 'q', namespaces: { names: ['team'] }, instances: ['q.example.com'] },
      ],
    };
    expect(checkPolicy(split, 'team', undefined, { chain: {}, registries: [personal] }, undefined)).toEqual({
      allowed: false,
      message: msg('team', 'rules p, q', 'registry p.example.com, q.example.com is not allowed'),
    });
  });
});

describe('checkPolicy: which hop a denial names', () => {
  // Rule "svc" allows the service role but no user role; rule "other" allows neither role.
  const policy: Policy = {
    rules: [
      { name: 'svc', namespaces: { names: ['team'] }, serviceArns: [SVC], instances: ['*'] },
      { name: 'other', namespaces: { globs: ['te*'] }, instances: ['*'] },
    ],
  };
  const one = { kind: 'instance' as const, instanceId: 'cri-one', region: 'cn-beijing' };

  it('the service role is allowed by one applicable rule: the user role is what is denied', () => {
    expect(checkPolicy(policy, 'team', undefined, { chain: { serviceArn: SVC, userArn: USR }, registries: [one] }, undefined)).toEqual({
      allowed: false,
      message: msg('team', 'rules svc, other', `user role ${USR} is not allowed`),
    });
  });

  it('a service role no applicable rule allows is named first', () => {
    const other = 'acs:ram::1234567890123456:role/other';
    expect(checkPolicy(policy, 'team', undefined, { chain: { serviceArn: other, userArn: USR }, registries: [one] }, undefined)).toEqual({
      allowed: false,
      message: msg('team', 'rules svc, other', `service role ${other} is not allowed`),
    });
  });
});

describe('checkPolicy: an instance without any region', () => {
  it('has its bare ID as key: it matches no region:cri-... entry, and the denial names the bare ID', () => {
    const policy: Policy = { rules: [{ name: 'bj', namespaces: { names: ['team'] }, instances: ['cn-beijing:cri-x'] }] };
    expect(checkPolicy(policy, 'team', undefined, { chain: {}, registries: [{ kind: 'instance', instanceId: 'cri-x' }] }, undefined)).toEqual({
      allowed: false,
      message: msg('team', 'rules bj', 'instance cri-x is not allowed'),
    });
    // The default region completes it.
    expect(checkPolicy(policy, 'team', undefined, { chain: {}, registries: [{ kind: 'instance', instanceId: 'cri-x' }] }, 'cn-beijing')).toEqual({ allowed: true });
  });
});

describe('selectorMatches: In and NotIn without values (the configuration allows leaving values out)', () => {
  it('In matches no value of the label and NotIn excludes none, whatever the value', () => {
    for (const value of ['prod', '', 'Stryker was here']) {
      expect(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'In' }] }, { team: value }), value).toBe(false);
      expect(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'NotIn' }] }, { team: value }), value).toBe(true);
    }
  });
});
