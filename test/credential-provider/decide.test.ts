// The provider's pure parts: the request and response, the token claims, and the decision.
import { beforeEach, describe, expect, it } from 'vitest';
import { parseAcrAnnotations } from '../../src/acr/annotations.js';
import { parseConfig } from '../../src/config/config.js';
import { decide, type ProviderRules } from '../../src/credential-provider/decide.js';
import { parseRequest, RequestError, responseText } from '../../src/credential-provider/protocol.js';
import { providerRules } from '../../src/credential-provider/rules.js';
import { readServiceAccountToken, type ServiceAccountToken } from '../../src/credential-provider/sa-token.js';

const V1 = 'credentialprovider.kubelet.k8s.io/v1';
const SVC = 'acs:ram::1234567890123456:role/acr-pull';
const USR = 'acs:ram::6543210987654321:role/reader';
const PROVIDER = 'acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1';
const ctx = { ownNamespace: 'acr-pull-webhook', regionFromEnv: 'cn-hangzhou' };

const jwt = (claims: Record<string, unknown>) =>
  `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;
const now = Date.now();
const claims = (over: Record<string, unknown> = {}) => ({
  iss: 'https://kubernetes.default.svc',
  sub: 'system:serviceaccount:team-a:puller',
  aud: ['sts.aliyuncs.com'],
  exp: Math.floor(now / 1000) + 600,
  'kubernetes.io': { namespace: 'team-a', serviceaccount: { name: 'puller', uid: 'uid-1' } },
  ...over,
});
// Read in each test, not at load: Stryker counts src code run at load as static.
let token: ServiceAccountToken;
beforeEach(() => {
  token = readServiceAccountToken(jwt(claims()), now);
});

function rules(doc: Record<string, unknown> = {}): ProviderRules {
  return providerRules(
    parseConfig(
      {
        registries: [{ instanceId: 'cri-configured0001', region: 'cn-hangzhou', domains: ['myreg-registry.cn-hangzhou.cr.aliyuncs.com', 'registry.example.com'] }],
        credentialProvider: { oidcProviderArn: PROVIDER },
        ...doc,
      },
      ctx,
    ),
  );
}

describe('request and response', () => {
  it('reads a v1 request with a token and annotations', () => {
    const req = parseRequest(JSON.stringify({ apiVersion: V1, kind: 'CredentialProviderRequest', image: 'a.io/b', serviceAccountToken: 't', serviceAccountAnnotations: { k: 'v' } }));
    expect(req).toEqual({ apiVersion: V1, image: 'a.io/b', serviceAccountToken: 't', serviceAccountAnnotations: { k: 'v' } });
    expect(parseRequest(JSON.stringify({ apiVersion: V1, kind: 'CredentialProviderRequest', image: 'a.io/b', serviceAccountToken: '', serviceAccountAnnotations: {} }))).toEqual({ apiVersion: V1, image: 'a.io/b' });
  });

  it.each([
    ['[]', 'not a JSON object'],
    [JSON.stringify({ apiVersion: V1, kind: 'CredentialProviderRequest' }), 'the request has no image'],
    [JSON.stringify({ apiVersion: V1, kind: 'CredentialProviderRequest', image: 'x'.repeat(5000) }), 'the limit is 4096'],
    [JSON.stringify({ apiVersion: V1, kind: 'CredentialProviderRequest', image: 'a', serviceAccountToken: 5 }), 'serviceAccountToken must be a string'],
    [JSON.stringify({ apiVersion: V1, kind: 'CredentialProviderRequest', image: 'a', serviceAccountAnnotations: { k: 1 } }), 'serviceAccountAnnotations["k"] must be a string'],
    [JSON.stringify({ apiVersion: V1, kind: 'CredentialProviderRequest', image: 'a', serviceAccountAnnotations: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }), 'has 65 entries'],
    ['x'.repeat((1 << 20) + 1), 'the limit is 1048576'],
  ])('refuses %#', (text, message) => {
    expect(() => parseRequest(text)).toThrow(RequestError);
    expect(() => parseRequest(text)).toThrow(message);
  });

  it('writes the kubelet’s field names, a Go duration, and no auth when there is none', () => {
    expect(JSON.parse(responseText(V1, { 'h.io': { username: 'u', password: 'p' } }, 'Registry', 2699.7))).toEqual({
      kind: 'CredentialProviderResponse',
      apiVersion: V1,
      cacheKeyType: 'Registry',
      cacheDuration: '2699s',
      auth: { 'h.io': { username: 'u', password: 'p' } },
    });
    expect(JSON.parse(responseText(V1, {}, 'Registry', -5))).toEqual({ kind: 'CredentialProviderResponse', apiVersion: V1, cacheKeyType: 'Registry', cacheDuration: '0s' });
  });
});

describe('ServiceAccount token claims', () => {
  it('reads issuer, subject, namespace, name, UID, audiences and expiry', () => {
    expect(token).toEqual({
      issuer: 'https://kubernetes.default.svc',
      subject: 'system:serviceaccount:team-a:puller',
      namespace: 'team-a',
      name: 'puller',
      uid: 'uid-1',
      audiences: ['sts.aliyuncs.com'],
      expiresAt: (Math.floor(now / 1000) + 600) * 1000,
    });
    expect(readServiceAccountToken(jwt(claims({ aud: 'one' })), now).audiences).toEqual(['one']);
  });

  it.each([
    ['a.b', 'not a JWT'],
    [`x.${Buffer.from('nope').toString('base64url')}.y`, 'unreadable payload'],
    [jwt(claims({ sub: 'alice' })), 'not a ServiceAccount token'],
    [jwt(claims({ sub: 'system:serviceaccount:Team_A:x' })), 'not a ServiceAccount token'],
    [jwt(claims({ iss: 'has space' })), 'no usable issuer'],
    [jwt(claims({ aud: [] })), 'no usable audience'],
    [jwt(claims({ exp: 'soon' })), 'no expiry'],
    [jwt(claims({ exp: Math.floor(now / 1000) - 1 })), 'has expired'],
  ])('refuses %#', (t, message) => {
    expect(() => readServiceAccountToken(t, now)).toThrow(message);
  });
});

describe('decision', () => {
  it('serves configured registries with the node identity when the ServiceAccount has no ACR annotation', () => {
    const d = decide({ image: 'registry.example.com/app:1' }, rules());
    expect(d).toEqual({
      kind: 'fetch',
      host: 'registry.example.com',
      bindings: [{ chain: {}, registries: [{ kind: 'instance', instanceId: 'cri-configured0001', region: 'cn-hangzhou', domains: ['myreg-registry.cn-hangzhou.cr.aliyuncs.com', 'registry.example.com'] }] }],
      requester: 'node',
    });
    expect(decide({ image: 'registry.example.com/app:1', token }, rules())).toMatchObject({ kind: 'fetch', requester: 'team-a', bindings: [{ chain: {} }] });
  });

  it('gives no answer for other registries, with the reason', () => {
    for (const image of ['nginx', 'docker.io/library/nginx', 'other-registry.cn-hangzhou.cr.aliyuncs.com/a', 'registry.cn-hangzhou.aliyuncs.com/a']) {
      expect(decide({ image }, rules())).toMatchObject({ kind: 'none', why: expect.stringContaining('is not a registry this node is configured to serve') });
    }
  });

  it('chains the annotated roles for the image’s registry only, with the workload token', () => {
    const annotations = { 'k8s.aliyun.com/acr-service-arns': SVC, 'k8s.aliyun.com/acr-user-arns': USR };
    expect(decide({ image: 'owner-registry-vpc.cn-beijing.cr.aliyuncs.com/a/b:1', annotations, token }, rules())).toEqual({
      kind: 'fetch',
      host: 'owner-registry-vpc.cn-beijing.cr.aliyuncs.com',
      bindings: [{ chain: { serviceArn: SVC, userArn: USR }, registries: [{ kind: 'instance-name', instanceName: 'owner', region: 'cn-beijing' }] }],
      requester: 'team-a',
      workload: token,
    });
    expect(decide({ image: 'crpi-x1.cn-shanghai.personal.cr.aliyuncs.com/a', annotations, token }, rules())).toMatchObject({
      kind: 'fetch',
      bindings: [{ registries: [{ kind: 'personal', region: 'cn-shanghai', domains: ['crpi-x1.cn-shanghai.personal.cr.aliyuncs.com'] }] }],
    });
  });

  it('keeps, of annotated instances, those that may serve the host: known domains decide, unknown ones are listed later', () => {
    const annotations = {
      'k8s.aliyun.com/acr-instance-ids': 'cn-hangzhou:cri-configured0001,cn-beijing:cri-unknown0002',
      'k8s.aliyun.com/acr-service-arns': `${SVC},${SVC}`,
    };
    const onConfigured = decide({ image: 'registry.example.com/a', annotations, token }, rules());
    expect(onConfigured).toMatchObject({ kind: 'fetch', bindings: [{ registries: [{ instanceId: 'cri-configured0001' }] }, { registries: [{ instanceId: 'cri-unknown0002' }] }] });
    const elsewhere = decide({ image: 'custom.example.org/a', annotations, token }, rules());
    expect(elsewhere).toMatchObject({ kind: 'fetch', bindings: [{ registries: [{ instanceId: 'cri-unknown0002' }] }] });
    const onlyKnown = decide({ image: 'custom.example.org/a', annotations: { 'k8s.aliyun.com/acr-instance-id': 'cri-configured0001', 'k8s.aliyun.com/acr-service-arns': SVC }, token }, rules());
    expect(onlyKnown).toMatchObject({ kind: 'none', why: 'none of the instances in the ServiceAccount\'s annotations serves custom.example.org' });
  });

  it('denies what the webhook denies, with its message', () => {
    const invalid: Record<string, string>[] = [
      { 'k8s.aliyun.com/acr-user-arns': USR },
      { 'k8s.aliyun.com/acr-service-arns': 'not-an-arn' },
      { 'k8s.aliyun.com/acr-instanceids': 'cri-a' },
    ];
    for (const annotations of invalid) {
      const webhook = parseAcrAnnotations(annotations);
      expect(webhook.kind).toBe('invalid');
      expect(decide({ image: 'a-registry.cn-hangzhou.cr.aliyuncs.com/x', annotations, token }, rules())).toEqual({
        kind: 'deny',
        message: `ServiceAccount annotations: ${(webhook as { message: string }).message}`,
      });
    }
    expect(decide({ image: 'custom.example.org/x', annotations: { 'k8s.aliyun.com/acr-service-arns': SVC }, token }, rules())).toMatchObject({
      kind: 'deny',
      message: expect.stringContaining('for custom domains add the instance IDs'),
    });
  });

  it('applies the policy to the token’s namespace; selector rules cannot match without namespace labels', () => {
    const policy = {
      rules: [
        { name: 'team-a', namespaces: { names: ['team-a'] }, serviceArns: [SVC], instances: ['a-registry.cn-hangzhou.cr.aliyuncs.com'] },
        { name: 'labelled', namespaces: { selector: { matchLabels: { team: 'b' } } }, serviceArns: ['*'], userArns: ['*'], instances: ['*'] },
      ],
    };
    const r = rules({ policy });
    const annotations = { 'k8s.aliyun.com/acr-service-arns': SVC };
    expect(decide({ image: 'a-registry.cn-hangzhou.cr.aliyuncs.com/x', annotations, token }, r).kind).toBe('fetch');
    expect(decide({ image: 'b-registry.cn-hangzhou.cr.aliyuncs.com/x', annotations, token }, r)).toMatchObject({
      kind: 'deny',
      message:
        'forbidden by the acr-pull-webhook policy for namespace team-a (rules team-a apply): registry b-registry.cn-hangzhou.cr.aliyuncs.com is not allowed; ask the cluster operator to extend the policy' +
        // The label-selected rule might have allowed it on a labelled namespace: the denial says why it did not apply.
        ". Rule labelled selects namespaces by label, which acr-credential-provider cannot see on the node, so it never applies to pulls through it: to cover namespace team-a here, add it to the rule's namespaces.names or namespaces.globs",
    });
    const teamB = readServiceAccountToken(jwt(claims({ sub: 'system:serviceaccount:team-b:x' })), now);
    const teamBDenial = decide({ image: 'a-registry.cn-hangzhou.cr.aliyuncs.com/x', annotations, token: teamB }, r);
    expect(teamBDenial).toMatchObject({ kind: 'deny', message: expect.stringContaining('namespace team-b is not covered by any rule') });
    // The rule that might have covered team-b by its labels is named, with why it cannot apply here and the fix.
    expect((teamBDenial as { message: string }).message).toContain(
      '. Rule labelled selects namespaces by label, which acr-credential-provider cannot see on the node, so it never applies to pulls through it: to cover namespace team-b here, add it to the rule\'s namespaces.names or namespaces.globs',
    );
    // A namespace the selector rule also covers by name: it applies, and nothing is said about labels.
    const byName = rules({ policy: { rules: [{ name: 'both', namespaces: { names: ['team-a'], selector: { matchLabels: { team: 'a' } } }, serviceArns: [SVC], instances: [] }] } });
    const denied = decide({ image: 'a-registry.cn-hangzhou.cr.aliyuncs.com/x', annotations, token }, byName) as { message: string };
    expect(denied.message).toContain('(rules both apply)');
    expect(denied.message).not.toContain('by label');
    // The operator's registries need no permission, as in the webhook.
    expect(decide({ image: 'registry.example.com/x', token: teamB }, r).kind).toBe('fetch');
  });

  it('adds nothing to a policy denial when no rule selects namespaces by label', () => {
    const r = rules({ policy: { rules: [{ name: 'team-a', namespaces: { names: ['team-a'] }, serviceArns: [SVC], instances: ['a-registry.cn-hangzhou.cr.aliyuncs.com'] }] } });
    expect(decide({ image: 'b-registry.cn-hangzhou.cr.aliyuncs.com/x', annotations: { 'k8s.aliyun.com/acr-service-arns': SVC }, token }, r)).toEqual({
      kind: 'deny',
      message:
        'forbidden by the acr-pull-webhook policy for namespace team-a (rules team-a apply): registry b-registry.cn-hangzhou.cr.aliyuncs.com is not allowed; ask the cluster operator to extend the policy',
    });
  });

  it('names every label-selected rule that could not apply, in the plural', () => {
    const everything = { serviceArns: ['*'], userArns: ['*'], instances: ['*'] };
    const policy = {
      rules: [
        { name: 'team-a', namespaces: { names: ['team-a'] }, serviceArns: [SVC], instances: ['a-registry.cn-hangzhou.cr.aliyuncs.com'] },
        { name: 'labelled', namespaces: { selector: { matchLabels: { team: 'b' } } }, ...everything },
        { name: 'prod', namespaces: { selector: { matchLabels: { env: 'prod' } } }, ...everything },
      ],
    };
    expect(decide({ image: 'b-registry.cn-hangzhou.cr.aliyuncs.com/x', annotations: { 'k8s.aliyun.com/acr-service-arns': SVC }, token }, rules({ policy }))).toEqual({
      kind: 'deny',
      message:
        'forbidden by the acr-pull-webhook policy for namespace team-a (rules team-a apply): registry b-registry.cn-hangzhou.cr.aliyuncs.com is not allowed; ask the cluster operator to extend the policy' +
        ". Rules labelled, prod select namespaces by label, which acr-credential-provider cannot see on the node, so they never apply to pulls through it: to cover namespace team-a here, add it to the rule's namespaces.names or namespaces.globs",
    });
  });

  it('says how to set the OIDC provider when a service ARN needs it', () => {
    const noProvider = providerRules(parseConfig({}, ctx));
    expect(decide({ image: 'a-registry.cn-hangzhou.cr.aliyuncs.com/x', annotations: { 'k8s.aliyun.com/acr-service-arns': SVC }, token }, noProvider)).toEqual({
      kind: 'deny',
      message:
        "k8s.aliyun.com/acr-service-arns is assumed with the ServiceAccount's token (RRSA), but this node's acr-credential-provider configuration " +
        "sets no credentialProvider.oidcProviderArn: set it to the cluster's RRSA OIDC provider",
    });
  });

  it('passes an unexpected error from the bindings on instead of making it a denial (its message is never shown)', () => {
    // Rules without their instance map (providerRules always builds one): an instance ID without region looks it up there.
    const broken = { ...rules(), registryById: undefined } as unknown as ProviderRules;
    expect(() => decide({ image: 'a.example.com/x', annotations: { 'k8s.aliyun.com/acr-instance-ids': 'cri-abc' }, token }, broken)).toThrow(TypeError);
  });

  it("says the host is not served when none of the node's candidate registries can serve it", () => {
    // providerRules only lists Enterprise instances of unknown domains as unlisted (candidates for any host); a
    // registry with known domains there is dropped for other hosts like any other.
    const r: ProviderRules = { ...rules(), unlisted: [{ chain: {}, registries: [{ kind: 'personal', region: 'cn-hangzhou', domains: ['mine.example.com'] }] }] };
    expect(decide({ image: 'mine.example.com/a' }, r)).toMatchObject({ kind: 'fetch', host: 'mine.example.com' });
    expect(decide({ image: 'other.example.com/a' }, r)).toEqual({ kind: 'none', host: 'other.example.com', why: 'other.example.com is not a registry this node is configured to serve' });
  });

  it('needs the token for annotations, and the OIDC provider for a service ARN', () => {
    const annotations = { 'k8s.aliyun.com/acr-service-arns': SVC };
    expect(decide({ image: 'a-registry.cn-hangzhou.cr.aliyuncs.com/x', annotations }, rules())).toMatchObject({ kind: 'deny', message: expect.stringContaining('set tokenAttributes.serviceAccountTokenAudience') });
    const noProvider = providerRules(parseConfig({}, ctx));
    expect(decide({ image: 'a-registry.cn-hangzhou.cr.aliyuncs.com/x', annotations, token }, noProvider)).toMatchObject({ kind: 'deny', message: expect.stringContaining('sets no credentialProvider.oidcProviderArn') });
    // Instance IDs alone use the node's identity: no OIDC provider needed.
    expect(decide({ image: 'a-registry.cn-hangzhou.cr.aliyuncs.com/x', annotations: { 'k8s.aliyun.com/acr-instance-ids': 'cri-abc' }, token }, noProvider).kind).toBe('fetch');
  });

  it("assumes a configured registry's own chain with the node identity, never with the workload's token", () => {
    const r = rules({ registries: [{ instanceId: 'cri-chained0001', region: 'cn-hangzhou', domains: ['chained.example.com'], serviceArn: SVC }] });
    const d = decide({ image: 'chained.example.com/a', token }, r);
    expect(d).toMatchObject({ kind: 'fetch', bindings: [{ chain: { serviceArn: SVC } }], requester: 'team-a' });
    expect(d).not.toHaveProperty('workload');
  });

  it('lists the domains of configured instances given without domains (candidates for any host)', () => {
    const r = rules({ registries: [{ instanceId: 'cri-unlisted0001', region: 'cn-shanghai' }] });
    expect(decide({ image: 'some.example.com/a' }, r)).toEqual({
      kind: 'fetch',
      host: 'some.example.com',
      bindings: [{ chain: {}, registries: [{ kind: 'instance', instanceId: 'cri-unlisted0001', region: 'cn-shanghai' }] }],
      requester: 'node',
    });
  });

  it('serves a configured Personal Edition registry without domains by its default hosts only, never as a candidate for other hosts', () => {
    const r = rules({ registries: [{ instanceId: '', region: 'cn-shanghai' }] });
    expect(r.unlisted).toEqual([]);
    expect(decide({ image: 'registry.cn-shanghai.aliyuncs.com/ns/a' }, r)).toMatchObject({ kind: 'fetch', bindings: [{ chain: {}, registries: [{ kind: 'personal', region: 'cn-shanghai' }] }] });
    expect(decide({ image: 'some.example.com/a' }, r)).toEqual({
      kind: 'none',
      host: 'some.example.com',
      why: 'some.example.com is not a registry this node is configured to serve and the ServiceAccount has no ACR annotations',
    });
  });

  it('serves Personal Edition hosts of the discovery regions when the configuration turns that on', () => {
    const r = rules({ registries: [], discovery: { enabled: true, regions: ['cn-hangzhou'], personalEdition: true } });
    expect(decide({ image: 'registry-vpc.cn-hangzhou.aliyuncs.com/ns/a' }, r)).toMatchObject({ kind: 'fetch', bindings: [{ chain: {}, registries: [{ kind: 'personal', region: 'cn-hangzhou' }] }] });
    expect(decide({ image: 'registry.cn-beijing.aliyuncs.com/ns/a' }, r).kind).toBe('none');
  });

  it('asks for discovery of an unknown Enterprise default domain of a discovery region (node identity only), once', () => {
    const config = parseConfig({ registries: [{ instanceId: 'cri-configured0001', region: 'cn-hangzhou', domains: ['myreg-registry.cn-hangzhou.cr.aliyuncs.com'] }], discovery: { enabled: true, regions: ['cn-hangzhou'], personalEdition: false }, credentialProvider: { oidcProviderArn: PROVIDER } }, ctx);
    const r = providerRules(config);
    expect(r.discoverByName).toBe(true);
    for (const host of ['found-registry.cn-hangzhou.cr.aliyuncs.com', 'found-registry-vpc.cn-hangzhou.cr.aliyuncs.com']) {
      expect(decide({ image: `${host}/team/app:1` }, r)).toEqual({ kind: 'discover', host, instanceName: 'found', region: 'cn-hangzhou' });
      // An unannotated ServiceAccount is node identity too.
      expect(decide({ image: `${host}/a`, token }, r).kind).toBe('discover');
    }
    // Not for configured domains, other regions, custom domains, Personal Edition (personalEdition off) or annotated workloads.
    expect(decide({ image: 'myreg-registry.cn-hangzhou.cr.aliyuncs.com/a' }, r).kind).toBe('fetch');
    expect(decide({ image: 'found-registry.cn-beijing.cr.aliyuncs.com/a' }, r).kind).toBe('none');
    expect(decide({ image: 'registry.example.org/a' }, r).kind).toBe('none');
    expect(decide({ image: 'registry.cn-hangzhou.aliyuncs.com/ns/a' }, r).kind).toBe('none');
    expect(decide({ image: 'found-registry.cn-hangzhou.cr.aliyuncs.com/a', annotations: { 'k8s.aliyun.com/acr-service-arns': SVC }, token }, r)).toMatchObject({
      kind: 'fetch',
      bindings: [{ chain: { serviceArn: SVC }, registries: [{ kind: 'instance-name', instanceName: 'found', region: 'cn-hangzhou' }] }],
    });
    // Once discovery has run: what it found is served with the node's identity on all its domains; nothing found is no answer.
    const found = providerRules(config, [{ instanceId: 'cri-found0001', region: 'cn-hangzhou', domains: ['found-registry.cn-hangzhou.cr.aliyuncs.com', 'found.example.com'] }]);
    expect(found.discoverByName).toBe(false);
    expect(decide({ image: 'found-registry.cn-hangzhou.cr.aliyuncs.com/a' }, found)).toEqual({
      kind: 'fetch',
      host: 'found-registry.cn-hangzhou.cr.aliyuncs.com',
      bindings: [{ chain: {}, registries: [{ kind: 'instance', instanceId: 'cri-found0001', region: 'cn-hangzhou', domains: ['found-registry.cn-hangzhou.cr.aliyuncs.com', 'found.example.com'] }] }],
      requester: 'node',
    });
    expect(decide({ image: 'found-registry.cn-hangzhou.cr.aliyuncs.com/a' }, providerRules(config, [])).kind).toBe('none');
    // Discovery off: never.
    expect(decide({ image: 'found-registry.cn-hangzhou.cr.aliyuncs.com/a' }, rules()).kind).toBe('none');
  });

  it('takes discovered registries next to configured ones, the configured winning a shared domain', () => {
    const config = parseConfig({ registries: [{ instanceId: 'cri-configured0001', region: 'cn-hangzhou', domains: ['shared.example.com'] }] }, ctx);
    const r = providerRules(config, [
      { instanceId: 'cri-found0001', region: 'cn-beijing', domains: ['found-registry.cn-beijing.cr.aliyuncs.com', 'shared.example.com'] },
    ]);
    expect(decide({ image: 'found-registry.cn-beijing.cr.aliyuncs.com/a' }, r)).toMatchObject({ kind: 'fetch', bindings: [{ chain: {}, registries: [{ instanceId: 'cri-found0001', region: 'cn-beijing' }] }] });
    expect(decide({ image: 'shared.example.com/a' }, r)).toMatchObject({ kind: 'fetch', bindings: [{ registries: [{ instanceId: 'cri-configured0001' }] }] });
  });
});
