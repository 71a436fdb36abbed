// Which registry an image is on, and what an ACR default domain says about its instance (README "Annotations").
import { beforeEach, describe, expect, it, vi } from 'vitest';

type Hosts = typeof import('../../src/acr/registry-hosts.js');
let parseAcrHost: Hosts['parseAcrHost'];
let registryHost: Hosts['registryHost'];
let INSTANCE_ID: RegExp;
let OIDC_PROVIDER_ARN: RegExp;
let REGION: RegExp;
let ROLE_ARN: RegExp;

beforeEach(async () => {
  // Loaded per test: the host and identifier patterns are built when the modules load.
  vi.resetModules();
  ({ parseAcrHost, registryHost } = await import('../../src/acr/registry-hosts.js'));
  ({ INSTANCE_ID, OIDC_PROVIDER_ARN, REGION, ROLE_ARN } = await import('../../src/acr/ids.js'));
});

describe('registryHost', () => {
  it('follows the Docker rule: the first component is a host only if it has a dot or a port, or is localhost', () => {
    expect(registryHost('nginx')).toBe('docker.io');
    expect(registryHost('nginx:1.27')).toBe('docker.io');
    expect(registryHost('library/nginx:1.27')).toBe('docker.io');
    expect(registryHost('/nginx')).toBe('docker.io');
    expect(registryHost('localhost/app:1')).toBe('localhost');
    expect(registryHost('localhost:5000/app:1')).toBe('localhost:5000');
    expect(registryHost('Registry.Example.COM/app/web:1')).toBe('registry.example.com');
    expect(registryHost('myreg-registry.cn-hangzhou.cr.aliyuncs.com/ns/app@sha256:abc')).toBe('myreg-registry.cn-hangzhou.cr.aliyuncs.com');
  });
});

describe('parseAcrHost', () => {
  it('recognises Enterprise Edition public and VPC default domains', () => {
    expect(parseAcrHost('myreg-registry.cn-hangzhou.cr.aliyuncs.com')).toStrictEqual({ kind: 'enterprise', instanceName: 'myreg', vpc: false, region: 'cn-hangzhou' });
    expect(parseAcrHost('myreg-registry-vpc.cn-hangzhou.cr.aliyuncs.com')).toStrictEqual({ kind: 'enterprise', instanceName: 'myreg', vpc: true, region: 'cn-hangzhou' });
    // One-character instance names are allowed.
    expect(parseAcrHost('a-registry.ap-southeast-1.cr.aliyuncs.com')).toStrictEqual({ kind: 'enterprise', instanceName: 'a', vpc: false, region: 'ap-southeast-1' });
  });

  it('recognises Personal Edition domains: registry[-intl][-vpc|-internal] and crpi-*', () => {
    for (const host of [
      'registry.cn-hangzhou.aliyuncs.com',
      'registry-intl.cn-hangzhou.aliyuncs.com',
      'registry-vpc.cn-hangzhou.aliyuncs.com',
      'registry-intl-vpc.cn-hangzhou.aliyuncs.com',
      'registry-internal.cn-hangzhou.aliyuncs.com',
      'crpi-abc123.cn-hangzhou.personal.cr.aliyuncs.com',
      'crpi-abc123-vpc.cn-hangzhou.personal.cr.aliyuncs.com',
    ]) {
      expect(parseAcrHost(host), host).toStrictEqual({ kind: 'personal', region: 'cn-hangzhou' });
    }
  });

  it('refuses look-alikes: anything before or after the domain, custom domains', () => {
    for (const host of [
      'x.myreg-registry.cn-hangzhou.cr.aliyuncs.com',
      'myreg-registry.cn-hangzhou.cr.aliyuncs.com.attacker.aliyuncs.com',
      'xregistry.cn-hangzhou.aliyuncs.com',
      'registry.cn-hangzhou.aliyuncs.com.x.aliyuncs.com',
      'xcrpi-abc.cn-hangzhou.personal.cr.aliyuncs.com',
      'crpi-abc.cn-hangzhou.personal.cr.aliyuncs.com.x.aliyuncs.com',
      'registry.example.com',
      'myreg-registry.cn-hangzhou.cr.aliyuncs.com.example.com',
    ]) {
      expect(parseAcrHost(host), host).toBeUndefined();
    }
  });
});

describe('identifier shapes', () => {
  it('region IDs', () => {
    for (const ok of ['cn-beijing', 'ap-southeast-1', 'cn-shanghai-finance-1', 'us-west-1']) expect(REGION.test(ok), ok).toBe(true);
    for (const bad of ['Beijing', '1cn-beijing', 'cn-beijing!', 'cn', 'cn-a-b-c-d-e', '']) expect(REGION.test(bad), bad).toBe(false);
  });

  it('Enterprise Edition instance IDs', () => {
    expect(INSTANCE_ID.test('cri-abc123def4567890')).toBe(true);
    for (const bad of ['xcri-abc', 'cri-abc!', 'cri-', 'cri-ABC', `cri-${'a'.repeat(61)}`]) expect(INSTANCE_ID.test(bad), bad).toBe(false);
  });

  it('RAM role ARNs', () => {
    expect(ROLE_ARN.test('acs:ram::1234567890123456:role/acr-pull.v2')).toBe(true);
    for (const bad of ['xacs:ram::1:role/r', 'acs:ram::1:role/r x', 'acs:ram::1:role/', 'acs:ram::x:role/r', `acs:ram::1:role/${'r'.repeat(65)}`]) {
      expect(ROLE_ARN.test(bad), bad).toBe(false);
    }
  });

  it('RAM OIDC provider ARNs', () => {
    expect(OIDC_PROVIDER_ARN.test('acs:ram::1234567890123456:oidc-provider/ack-rrsa_c1.x')).toBe(true);
    expect(OIDC_PROVIDER_ARN.test(`acs:ram::1:oidc-provider/${'p'.repeat(128)}`)).toBe(true);
    for (const bad of ['xacs:ram::1:oidc-provider/p', 'acs:ram::1:oidc-provider/p x', 'acs:ram::1:oidc-provider/', 'acs:ram::1:role/p', `acs:ram::1:oidc-provider/${'p'.repeat(129)}`]) {
      expect(OIDC_PROVIDER_ARN.test(bad), bad).toBe(false);
    }
  });
});
