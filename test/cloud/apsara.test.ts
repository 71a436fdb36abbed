// Apsara Stack from configuration alone: region IDs like cn-qingdao-env17-d01, private CR and STS endpoints
// (environment or configuration file, one URL per region), instanceId `default`, domains outside aliyuncs.com.
import { afterAll, describe, expect, it } from 'vitest';
import { startEmulator, type WorldSpec } from '../../emulator/index.js';
import { planAdmission, servingRules } from '../../src/admission/plan.js';
import { parseAdmissionReview } from '../../src/admission/review.js';
import { RegistryDiscovery } from '../../src/cloud/discovery.js';
import { endpointsFromEnv } from '../../src/cloud/endpoints.js';
import { staticIdentity } from '../../src/cloud/identity.js';
import { CloudCaller } from '../../src/cloud/rpc.js';
import { AcrTokenSource } from '../../src/cloud/token-source.js';
import { parseConfig } from '../../src/config/config.js';
import { fixture } from '../support/fixtures.js';

const REGION = 'cn-qingdao-env17-d01';
const ACCOUNT = '5000000000000001';
const KEY = { accessKeyId: 'LTAI5tApsaraKey000000001', accessKeySecret: 'apsara-secret-0000000000000000' };

function world(): WorldSpec {
  return {
    accounts: [
      {
        id: ACCOUNT,
        users: [{ name: 'webhook', accessKeys: [{ id: KEY.accessKeyId, secret: KEY.accessKeySecret }], permissions: { assumeRole: '*', crReadInstance: '*' } }],
        roles: [{ name: 'acr-reader', trust: [{ user: `acs:ram::${ACCOUNT}:user/webhook` }], permissions: { crGetAuthorizationToken: '*', crReadInstance: '*' } }],
      },
    ],
    instances: [{ id: 'default', name: 'acs', region: REGION, accountId: ACCOUNT, customDomains: ['registry.acs.example.com'] }],
  };
}

const emu = await startEmulator({ world: world() });
const caller = new CloudCaller({ backoffMs: 5 });
afterAll(async () => {
  caller.close();
  await emu.close();
});

describe('Apsara Stack', () => {
  it('accepts its region IDs and `instanceId: default` with domains outside aliyuncs.com', () => {
    const c = parseConfig({ defaultRegion: REGION, registries: [{ instanceId: 'default', domains: ['registry.acs.example.com'] }] }, { ownNamespace: 'x' });
    expect(c.defaultRegion).toBe(REGION);
    expect(c.registries).toEqual([{ edition: 'enterprise', instanceId: 'default', region: REGION, domains: ['registry.acs.example.com'], chain: {} }]);
    expect(() => parseConfig({ registries: [{ instanceId: 'Default' }] }, { ownNamespace: 'x' })).toThrow('registries[0].instanceId: "Default" is not an instance ID');
  });

  it('takes private endpoints from the configuration file, one CR URL per region; the environment wins', () => {
    const file = { sts: 'https://sts.inter.env17e.shuguang.com/', cr: { [REGION]: 'https://cr.inter.env17e.shuguang.com' }, ram: 'https://ram.inter.env17e.shuguang.com' };
    const fromFile = endpointsFromEnv({}, file);
    expect(fromFile.sts).toBe('https://sts.inter.env17e.shuguang.com');
    expect(fromFile.ram).toBe('https://ram.inter.env17e.shuguang.com');
    expect(fromFile.cr(REGION)).toBe('https://cr.inter.env17e.shuguang.com');
    expect(fromFile.cr('cn-hangzhou')).toBe('https://cr.cn-hangzhou.aliyuncs.com');
    const fromEnv = endpointsFromEnv({ ALIBABA_CLOUD_STS_ENDPOINT: 'https://sts.private.example', ALIBABA_CLOUD_CR_ENDPOINT: 'https://cr-{region}.private.example' }, file);
    expect(fromEnv.sts).toBe('https://sts.private.example');
    expect(fromEnv.cr(REGION)).toBe(`https://cr-${REGION}.private.example`);
    expect(endpointsFromEnv({}, { cr: 'https://{region}.cr.private.example' }).cr(REGION)).toBe(`https://${REGION}.cr.private.example`);
    expect(endpointsFromEnv({}).ram).toBe('https://ram.aliyuncs.com');
    expect(() => endpointsFromEnv({ ALIBABA_CLOUD_RAM_ENDPOINT: 'ram.example' })).toThrow('ALIBABA_CLOUD_RAM_ENDPOINT must be a full URL');
  });

  it('serves an unannotated Pod on registry.acs.example.com through the private STS and CR endpoints, with domains looked up', async () => {
    const config = parseConfig(
      {
        defaultRegion: REGION,
        registries: [{ instanceId: 'default', serviceArn: `acs:ram::${ACCOUNT}:role/acr-reader` }],
        endpoints: { sts: emu.stsEndpoint, cr: { [REGION]: emu.crEndpoint(REGION) } },
      },
      { ownNamespace: 'acr-pull-webhook' },
    );
    const endpoints = endpointsFromEnv({}, config.endpoints);
    const tokens = new AcrTokenSource({ identity: staticIdentity('test', KEY), endpoints, caller, sessionDurationSeconds: 3600, refreshThresholdMs: 900_000 });
    const discovery = new RegistryDiscovery({ config, caller, endpoints, tokens, requester: 'acr-pull-webhook', onIndex: () => {} });
    await discovery.refresh();
    const rules = servingRules(config, 'acr-pull-webhook', undefined, discovery.current);
    const doc = fixture('pod-served-registries-no-annotations');
    doc.request.object.spec.initContainers = [];
    doc.request.object.spec.containers = [{ name: 'alpine', image: 'registry.acs.example.com/kritis-test/alpine:3.11' }];
    const plan = planAdmission(parseAdmissionReview(doc), rules);
    if (plan.action !== 'mutate') throw new Error(`expected a mutation, got ${JSON.stringify(plan)}`);
    const binding = plan.specs[0]!.binding;
    expect(binding.registries).toEqual([{ kind: 'instance', instanceId: 'default', region: REGION, domains: ['acs-registry-vpc.cn-qingdao-env17-d01.cr.aliyuncs.com', 'acs-registry.cn-qingdao-env17-d01.cr.aliyuncs.com', 'registry.acs.example.com'] }]);
    const auths = await tokens.dockerAuths(binding, 'team-a', { deadline: Date.now() + 5000 });
    expect(Object.keys(auths.auths)).toContain('registry.acs.example.com');
    // The chain's hop went to the private STS endpoint (once for the domain look-up, as acr-pull@acr-pull-webhook,
    // once for team-a's Secret), the token call to the region's private CR endpoint.
    expect(emu.calls.count({ product: 'sts', action: 'AssumeRole' })).toBe(2);
    expect(emu.calls.count({ product: 'cr', action: 'GetAuthorizationToken' })).toBe(1);
  });
});
