// The Helm chart, with the pinned helm (skipped, saying so, when it is not built): helm lint; helm template with
// several value sets, each checked against what it must produce; bad values refused by values.schema.json
// with a message naming the value; and agreement with manifests/base on the webhooks, RBAC and the Deployment's
// security settings, so a change to one side fails here until the other follows.
import { X509Certificate } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ROLE_ARN } from '../../src/acr/ids.js';
import { parseConfig } from '../../src/config/config.js';
import { ensureSelfSignedCert } from '../../src/standalone/self-signed.js';
import { hasKubectl, kustomize, ROOT } from '../manifests/helpers.js';
import { CHART, find, helm, HELM, RELEASE_NS as NS, rendered, template, type K8sObject } from './helm.js';

const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'CustomResourceDefinition']);
const ROLE = 'acs:ram::1234567890123456:role/acr-pull-webhook';
const OIDC = 'acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0123456789';
const HELPER = 'acr-pull-webhook-credential-helper';
const MUTATING = ['annotated', 'default', 'serviceaccounts'].map((w) => `${w}.acr-pull-webhook.k8s.aliyun.com`);

let caPem: string | undefined;
/** A real CA certificate for the "secret" mode (openssl, once). */
function somePemCa(): string {
  if (!caPem) {
    const dir = mkdtempSync(join(tmpdir(), 'acr-chart-ca-'));
    caPem = readFileSync(ensureSelfSignedCert(dir).certFile, 'utf8');
    rmSync(dir, { recursive: true, force: true });
  }
  return caPem;
}

const env = (objs: K8sObject[]) => Object.fromEntries(find(objs, 'Deployment').spec.template.spec.containers[0].env.map((e: K8sObject) => [e.name, e.value ?? e.valueFrom]));
const webhooks = (objs: K8sObject[]) => objs.filter((o) => o.kind.endsWith('WebhookConfiguration')).flatMap((o) => o.webhooks);
const mutating = (objs: K8sObject[]) => find(objs, 'MutatingWebhookConfiguration').webhooks.map((w: K8sObject) => [w.name, w.failurePolicy]);
/** The Role and RoleBinding that let the webhook read the credential helper's ConfigMap, where they are. */
const helperGrant = (objs: K8sObject[]) => {
  const role = find(objs, 'Role', HELPER);
  const binding = find(objs, 'RoleBinding', HELPER);
  return role && { namespace: role.metadata.namespace, names: role.rules[0].resourceNames, bindingNamespace: binding?.metadata.namespace, subjects: binding?.subjects };
};

/** What every rendering must satisfy, whatever the values. */
function checkCommon(objs: K8sObject[]): void {
  expect(objs.length).toBeGreaterThan(8);
  for (const o of objs) {
    const id = `${o.kind}/${o.metadata?.name}`;
    expect(typeof o.apiVersion, id).toBe('string');
    expect(o.metadata?.name, id).toBeTruthy();
    // The credential helper's grant lives next to its ConfigMap (checked by the value sets below).
    if (!CLUSTER_SCOPED.has(o.kind) && o.metadata.name !== HELPER) expect(o.metadata.namespace, id).toBe(NS);
    expect(o.metadata.labels, id).toMatchObject({
      'app.kubernetes.io/name': 'acr-pull-webhook',
      'app.kubernetes.io/instance': 'acr-pull-webhook',
      'app.kubernetes.io/version': pkg.version,
      'app.kubernetes.io/part-of': 'acr-pull-webhook',
      'app.kubernetes.io/managed-by': 'Helm',
    });
  }
  // The webhook deletes idle Secrets carrying this label: none of the chart's own objects may carry it.
  expect(JSON.stringify(objs)).not.toContain('"app.kubernetes.io/managed-by":"acr-pull-webhook"');
  // The configuration file is one the webhook accepts.
  const cm = find(objs, 'ConfigMap', 'acr-pull-webhook-config');
  expect(() => parseConfig(parseYaml(cm.data['config.yaml']), { ownNamespace: NS }, 'config.yaml')).not.toThrow();
  // Names line up: the mounted Secret and ConfigMap, the Service and every webhook.
  const pod = find(objs, 'Deployment').spec.template.spec;
  expect(pod.volumes.find((v: K8sObject) => v.name === 'config').configMap.name).toBe(cm.metadata.name);
  expect(pod.serviceAccountName).toBe(find(objs, 'ServiceAccount').metadata.name);
  for (const w of webhooks(objs)) if (w.clientConfig.service) expect(w.clientConfig.service).toMatchObject({ name: find(objs, 'Service').metadata.name, namespace: NS, port: 443 });
}

const VALUE_SETS: [string, object, (objs: K8sObject[]) => void][] = [
  [
    'defaults: self-signed certificates, the three mutating webhooks and the validating one, system-cluster-critical, the credential helper’s ConfigMap readable',
    {},
    (objs) => {
      const secret = find(objs, 'Secret', 'acr-pull-webhook-tls');
      expect(secret.type).toBe('kubernetes.io/tls');
      const ca = new X509Certificate(Buffer.from(secret.data['ca.crt'], 'base64'));
      const cert = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64'));
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(ca.ca).toBe(true);
      expect(cert.checkHost(`acr-pull-webhook.${NS}.svc`)).toBeDefined();
      expect(cert.checkHost(`acr-pull-webhook.${NS}.svc.cluster.local`)).toBeDefined();
      expect(Buffer.from(secret.data['tls.key'], 'base64').toString()).toMatch(/PRIVATE KEY/);
      // Every webhook trusts exactly that CA.
      expect(webhooks(objs).map((w) => w.clientConfig.caBundle)).toEqual([secret.data['ca.crt'], secret.data['ca.crt'], secret.data['ca.crt'], secret.data['ca.crt']]);
      expect(mutating(objs)).toEqual([[MUTATING[0], 'Fail'], [MUTATING[1], 'Ignore'], [MUTATING[2], 'Ignore']]);
      // kube-system/acr-configuration, the webhook's default, by name and read-only.
      expect(helperGrant(objs)).toEqual({ namespace: 'kube-system', names: ['acr-configuration'], bindingNamespace: 'kube-system', subjects: [{ kind: 'ServiceAccount', name: 'acr-pull-webhook', namespace: NS }] });
      expect(find(objs, 'Role', HELPER).rules).toEqual([{ apiGroups: [''], resources: ['configmaps'], resourceNames: ['acr-configuration'], verbs: ['list', 'watch'] }]);
      expect(find(objs, 'Deployment').spec.template.spec.priorityClassName).toBe('system-cluster-critical');
      expect(find(objs, 'Deployment').spec.template.spec.containers[0].image).toBe(`acr-pull-webhook:${pkg.version}`);
      for (const k of ['Namespace', 'NetworkPolicy', 'ServiceMonitor', 'PodMonitor', 'PrometheusRule', 'CustomResourceDefinition', 'Certificate']) expect(find(objs, k), k).toBeUndefined();
    },
  ],
  [
    'cert-manager: the CA chain and serving Certificate of the kustomize overlay, CA injected, no Secret rendered',
    { certificates: { mode: 'cert-manager' } },
    (objs) => {
      expect(objs.filter((o) => o.kind === 'Issuer').map((o) => Object.keys(o.spec)[0]).sort()).toEqual(['ca', 'selfSigned']);
      const serving = find(objs, 'Certificate', 'acr-pull-webhook-serving');
      expect(serving.spec).toMatchObject({ secretName: 'acr-pull-webhook-tls', dnsNames: [`acr-pull-webhook.${NS}.svc`, `acr-pull-webhook.${NS}.svc.cluster.local`], issuerRef: { name: 'acr-pull-webhook-ca', kind: 'Issuer' } });
      expect(find(objs, 'Secret')).toBeUndefined();
      for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
        expect(find(objs, kind).metadata.annotations).toEqual({ 'cert-manager.io/inject-ca-from': `${NS}/acr-pull-webhook-serving` });
      }
      for (const w of webhooks(objs)) expect(w.clientConfig.caBundle).toBeUndefined();
    },
  ],
  [
    'cert-manager with your issuer: only the serving Certificate, issued by it',
    { certificates: { mode: 'cert-manager', certManager: { issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } } } },
    (objs) => {
      expect(objs.filter((o) => o.apiVersion === 'cert-manager.io/v1').map((o) => o.metadata.name)).toEqual(['acr-pull-webhook-serving']);
      expect(find(objs, 'Certificate').spec.issuerRef).toEqual({ name: 'corp-ca', kind: 'ClusterIssuer' });
    },
  ],
  [
    'your Secret: mounted, its CA in every caBundle, nothing generated',
    { certificates: { mode: 'secret', secret: { name: 'my-webhook-tls', caBundle: '(CA)' } } },
    (objs) => {
      expect(find(objs, 'Secret')).toBeUndefined();
      expect(find(objs, 'Deployment').spec.template.spec.volumes.find((v: K8sObject) => v.name === 'tls').secret.secretName).toBe('my-webhook-tls');
      for (const w of webhooks(objs)) expect(Buffer.from(w.clientConfig.caBundle, 'base64').toString()).toBe(somePemCa());
    },
  ],
  [
    'annotatedOnly without the validating webhook: the fail-closed annotated webhook, and the ServiceAccount one for the credential helper',
    { webhook: { annotatedOnly: true, validating: false } },
    (objs) => {
      expect(mutating(objs)).toEqual([[MUTATING[0], 'Fail'], [MUTATING[2], 'Ignore']]);
      expect(find(objs, 'ValidatingWebhookConfiguration')).toBeUndefined();
      expect(helperGrant(objs)?.namespace).toBe('kube-system');
    },
  ],
  [
    'annotatedOnly and the credential helper off: the annotated webhook alone, no Role outside the release namespace',
    { webhook: { annotatedOnly: true }, config: { credentialHelper: { configMap: '' } } },
    (objs) => {
      expect(mutating(objs)).toEqual([[MUTATING[0], 'Fail']]);
      expect(helperGrant(objs)).toBeUndefined();
      expect(objs.filter((o) => o.metadata.namespace !== undefined && o.metadata.namespace !== NS)).toEqual([]);
      const text = find(objs, 'ConfigMap', 'acr-pull-webhook-config').data['config.yaml'];
      expect(parseConfig(parseYaml(text), { ownNamespace: NS }).credentialHelper).toEqual({});
    },
  ],
  [
    'the credential helper off, every object still sent: the ServiceAccount webhook stays (it checks their annotations)',
    { config: { credentialHelper: { configMap: '' } } },
    (objs) => {
      expect(mutating(objs).map(([name]: string[]) => name)).toEqual(MUTATING);
      expect(helperGrant(objs)).toBeUndefined();
    },
  ],
  [
    'the credential helper’s ConfigMap elsewhere: the Role moves with it, the binding still names the webhook',
    { config: { credentialHelper: { configMap: 'ops/acr-config' } } },
    (objs) => {
      expect(helperGrant(objs)).toEqual({ namespace: 'ops', names: ['acr-config'], bindingNamespace: 'ops', subjects: [{ kind: 'ServiceAccount', name: 'acr-pull-webhook', namespace: NS }] });
      const text = find(objs, 'ConfigMap', 'acr-pull-webhook-config').data['config.yaml'];
      expect(parseConfig(parseYaml(text), { ownNamespace: NS }).credentialHelper).toEqual({ configMap: { namespace: 'ops', name: 'acr-config' } });
    },
  ],
  [
    'RRSA through ack-pod-identity-webhook, with the Namespace: the ServiceAccount annotation and the namespace label',
    { namespace: { create: true }, identity: { rrsa: { mode: 'webhook', roleName: 'acr-pull-webhook' } } },
    (objs) => {
      expect(find(objs, 'ServiceAccount').metadata.annotations).toEqual({ 'pod-identity.alibabacloud.com/role-name': 'acr-pull-webhook' });
      expect(find(objs, 'Namespace', NS).metadata.labels).toMatchObject({
        'pod-identity.alibabacloud.com/injection': 'on',
        'acr-pull-webhook.k8s.aliyun.com/ignore': 'true',
        'pod-security.kubernetes.io/enforce': 'restricted',
      });
      // The injection webhook sets the environment; the chart does not.
      expect(env(objs).ALIBABA_CLOUD_ROLE_ARN).toBeUndefined();
    },
  ],
  [
    'RRSA without ack-pod-identity-webhook: the chart mounts the STS-audience token and sets the role and provider',
    { identity: { rrsa: { mode: 'manual', roleArn: ROLE, oidcProviderArn: OIDC } } },
    (objs) => {
      const pod = find(objs, 'Deployment').spec.template.spec;
      expect(env(objs)).toMatchObject({ ALIBABA_CLOUD_ROLE_ARN: ROLE, ALIBABA_CLOUD_OIDC_PROVIDER_ARN: OIDC, ALIBABA_CLOUD_OIDC_TOKEN_FILE: '/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token' });
      expect(pod.volumes.find((v: K8sObject) => v.name === 'rrsa-oidc-token').projected.sources).toEqual([{ serviceAccountToken: { audience: 'sts.aliyuncs.com', expirationSeconds: 3600, path: 'token' } }]);
      expect(pod.containers[0].volumeMounts.find((m: K8sObject) => m.name === 'rrsa-oidc-token').mountPath).toBe('/var/run/secrets/ack.alibabacloud.com/rrsa-tokens');
      expect(find(objs, 'ServiceAccount').metadata.annotations).toBeUndefined();
    },
  ],
  [
    'an AccessKey Secret, a region and private endpoints: environment from values, the key by reference only',
    { identity: { accessKeySecret: { name: 'acr-pull-webhook-ak' }, region: 'cn-beijing', stsEndpoint: 'https://sts-vpc.cn-beijing.aliyuncs.com', crEndpoint: 'https://cr-vpc.{region}.aliyuncs.com' } },
    (objs) => {
      expect(env(objs)).toMatchObject({
        ALIBABA_CLOUD_ACCESS_KEY_ID: { secretKeyRef: { name: 'acr-pull-webhook-ak', key: 'access-key-id' } },
        ALIBABA_CLOUD_ACCESS_KEY_SECRET: { secretKeyRef: { name: 'acr-pull-webhook-ak', key: 'access-key-secret' } },
        ALIBABA_CLOUD_REGION_ID: 'cn-beijing',
        ALIBABA_CLOUD_STS_ENDPOINT: 'https://sts-vpc.cn-beijing.aliyuncs.com',
        ALIBABA_CLOUD_CR_ENDPOINT: 'https://cr-vpc.{region}.aliyuncs.com',
      });
    },
  ],
  [
    'monitoring, NetworkPolicy, the ImageCache CRD and an image by digest',
    {
      image: { repository: 'registry.example.com/acr-pull-webhook', digest: `sha256:${'a'.repeat(64)}` },
      imageCacheCRD: { install: true },
      networkPolicy: { enabled: true, metricsFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] },
      monitoring: { serviceMonitor: { enabled: true, labels: { release: 'prom' } }, podMonitor: { enabled: true }, prometheusRule: { enabled: true }, dashboard: { enabled: true } },
    },
    (objs) => {
      expect(find(objs, 'Deployment').spec.template.spec.containers[0].image).toBe(`registry.example.com/acr-pull-webhook@sha256:${'a'.repeat(64)}`);
      const crd = find(objs, 'CustomResourceDefinition', 'imagecaches.eci.alibabacloud.com');
      expect(crd.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
      const component = parseYaml(readFileSync(join(ROOT, 'manifests/components/imagecache-crd/imagecache-crd.yaml'), 'utf8'));
      expect(crd.spec).toEqual(component.spec);
      const sm = find(objs, 'ServiceMonitor');
      expect(sm.metadata.labels.release).toBe('prom');
      expect(sm.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '30s' }]);
      expect(Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => find(objs, 'Service').metadata.labels[k] === v)).toBe(true);
      const pm = find(objs, 'PodMonitor');
      expect(Object.entries(pm.spec.selector.matchLabels).every(([k, v]) => find(objs, 'Deployment').spec.template.metadata.labels[k] === v)).toBe(true);
      expect(find(objs, 'PrometheusRule').spec.groups[0].rules.length).toBeGreaterThanOrEqual(6);
      const dashboard = find(objs, 'ConfigMap', 'acr-pull-webhook-dashboard');
      expect(dashboard.metadata.labels.grafana_dashboard).toBe('1');
      expect(JSON.parse(dashboard.data['acr-pull-webhook.json']).uid).toBe('acr-pull-webhook');
      const np = find(objs, 'NetworkPolicy');
      expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
      expect(np.spec.ingress[1]).toEqual({ ports: [{ port: 'metrics', protocol: 'TCP' }], from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] });
      const ports = find(objs, 'Deployment').spec.template.spec.containers[0].ports.map((p: K8sObject) => p.name);
      for (const rule of np.spec.ingress) expect(ports).toContain(rule.ports[0].port);
    },
  ],
  [
    'the whole configuration passed through: registries, discovery, endpoints and policy reach config.yaml as given',
    {
      config: {
        defaultRegion: 'cn-beijing',
        registries: [
          { instanceId: 'cri-0123456789abcdef', region: 'cn-beijing', domains: ['myreg-registry.cn-beijing.cr.aliyuncs.com'] },
          { instanceId: '', region: 'cn-shanghai', serviceArn: ROLE },
        ],
        discovery: { enabled: true, regions: ['cn-beijing', 'cn-shanghai'], interval: '5m', personalEdition: false },
        endpoints: { sts: 'https://sts-vpc.cn-beijing.aliyuncs.com', cr: 'https://cr-vpc.{region}.aliyuncs.com' },
        namespaces: { include: [], exclude: ['sandbox-*'] },
        credentials: { refreshThreshold: '20m' },
        policy: { rules: [{ name: 'team-a', namespaces: { names: ['team-a'] }, serviceArns: [ROLE] }] },
      },
    },
    (objs) => {
      const text = find(objs, 'ConfigMap', 'acr-pull-webhook-config').data['config.yaml'];
      const config = parseConfig(parseYaml(text), { ownNamespace: NS }, 'config.yaml');
      expect(config.registries).toEqual([
        { edition: 'enterprise', instanceId: 'cri-0123456789abcdef', region: 'cn-beijing', domains: ['myreg-registry.cn-beijing.cr.aliyuncs.com'], chain: {} },
        { edition: 'personal', region: 'cn-shanghai', chain: { serviceArn: ROLE } },
      ]);
      expect(config.discovery).toEqual({ enabled: true, regions: ['cn-beijing', 'cn-shanghai'], intervalMs: 5 * 60_000, missIntervalMs: 30_000, personalEdition: false });
      expect(config.endpoints).toMatchObject({ sts: 'https://sts-vpc.cn-beijing.aliyuncs.com' });
      // The values' credentialHelper default is the webhook's own.
      expect(config.credentialHelper).toEqual({ configMap: { namespace: 'kube-system', name: 'acr-configuration' } });
      expect(config.policy?.rules.map((r) => r.name)).toEqual(['team-a']);
      expect(config.credentials.refreshThresholdMs).toBe(20 * 60_000);
    },
  ],
  [
    'listen addresses: bindAddress and metricsBindAddress become BIND_ADDRESS and METRICS_BIND_ADDRESS (unset by default)',
    { bindAddress: '::', metricsBindAddress: '127.0.0.1' },
    (objs) => {
      const env = find(objs, 'Deployment').spec.template.spec.containers[0].env as { name: string; value?: string }[];
      expect(env.filter((e) => e.name.endsWith('BIND_ADDRESS'))).toEqual([
        { name: 'BIND_ADDRESS', value: '::' },
        { name: 'METRICS_BIND_ADDRESS', value: '127.0.0.1' },
      ]);
    },
  ],
  [
    'development: the API server calls an outside URL, whose IP the self-signed certificate names',
    { webhook: { url: 'https://127.0.0.1:18443' } },
    (objs) => {
      const m = webhooks(objs).map((w) => [w.clientConfig.url, w.clientConfig.service]);
      expect(m).toEqual([
        ['https://127.0.0.1:18443/mutate', undefined],
        ['https://127.0.0.1:18443/mutate', undefined],
        ['https://127.0.0.1:18443/mutate', undefined],
        ['https://127.0.0.1:18443/validate', undefined],
      ]);
      const cert = new X509Certificate(Buffer.from(find(objs, 'Secret').data['tls.crt'], 'base64'));
      expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
      // The Deployment and Service are still rendered (and applied by npm run e2e).
      expect(find(objs, 'Deployment')).toBeDefined();
    },
  ],
];

const BAD_VALUES: [string, object, RegExp][] = [
  ['a misspelt top-level value', { replica: 3 }, /additional propert(y|ies) 'replica' not allowed/],
  ['no replicas', { replicas: 0 }, /replicas/],
  ['an unknown certificates mode', { certificates: { mode: 'letsencrypt' } }, /certificates[./]mode/],
  ['the secret mode without a CA', { certificates: { mode: 'secret', secret: { name: 'x' } } }, /caBundle/],
  ['a digest that is not sha256', { image: { digest: 'md5:abc' } }, /image[./]digest/],
  ['RRSA webhook mode without a role name', { identity: { rrsa: { mode: 'webhook' } } }, /roleName/],
  ['RRSA manual mode without the provider', { identity: { rrsa: { mode: 'manual', roleArn: ROLE } } }, /oidcProviderArn/],
  ['a role ARN that is not one', { identity: { rrsa: { mode: 'manual', roleArn: 'arn:aws:iam::1:role/x', oidcProviderArn: OIDC } } }, /roleArn/],
  ['a misspelt configuration key', { config: { registry: [] } }, /additional propert(y|ies) 'registry' not allowed/],
  ['registries that are not a list', { config: { registries: { instanceId: 'cri-x' } } }, /config[./]registries/],
  ['a plain-HTTP webhook URL', { webhook: { url: 'http://127.0.0.1:8443' } }, /webhook[./]url/],
  ['a TLS version the webhook does not take', { tlsMinVersion: 'TLSv1.1' }, /tlsMinVersion/],
  ['a listen address that is a host name', { bindAddress: 'localhost' }, /bindAddress'?: 'localhost' does not match pattern/],
  ['a metrics listen address that is not an IP', { metricsBindAddress: '300.1.1.1' }, /metricsBindAddress'?: '300.1.1.1' does not match pattern/],
  ['a credential helper ConfigMap without its namespace', { config: { credentialHelper: { configMap: 'acr-configuration' } } }, /config[./]credentialHelper[./]configMap/],
  ['a misspelt credential helper key', { config: { credentialHelper: { configmap: 'kube-system/acr-configuration' } } }, /additional propert(y|ies) 'configmap' not allowed/],
];

describe.runIf(HELM.run)(`the Helm chart${HELM.note}`, () => {
  it('helm lint --strict passes', () => {
    const r = helm(['lint', '--strict', CHART, '--namespace', NS]);
    expect(r.stdout + r.stderr).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(r.status).toBe(0);
  });

  it('Chart.yaml: version and appVersion are package.json’s', () => {
    const chart = parseYaml(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'));
    expect([chart.version, chart.appVersion]).toEqual([pkg.version, pkg.version]);
  });

  it.each(VALUE_SETS)('helm template, %s', (_name, values, check) => {
    const v = JSON.parse(JSON.stringify(values).replace('"(CA)"', JSON.stringify(somePemCa())));
    const objs = rendered(v);
    checkCommon(objs);
    check(objs);
  });

  it.each(BAD_VALUES)('bad values fail helm template with a message naming them: %s', (_name, values, message) => {
    const r = template(values);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(r.stderr).toMatch(message);
  });

  it('the self-signed certificate is made once per render and shared by the Secret and every caBundle', () => {
    const a = rendered();
    const b = rendered();
    expect(find(a, 'Secret').data['ca.crt']).not.toBe(find(b, 'Secret').data['ca.crt']);
    expect(new Set(webhooks(a).map((w) => w.clientConfig.caBundle))).toEqual(new Set([find(a, 'Secret').data['ca.crt']]));
  });
});

describe('values.schema.json', () => {
  it('pins the configuration file’s top-level keys: exactly those the webhook’s parser knows', () => {
    let known: string[] = [];
    try {
      parseConfig({ 'no-such-key': 1 }, { ownNamespace: NS });
    } catch (e) {
      known = /\(known: ([^)]+)\)/.exec((e as Error).message)![1]!.split(', ');
    }
    expect(known).toContain('registries');
    // A new top-level field of the configuration file needs its line in values.schema.json (properties.config).
    expect(Object.keys(schema.properties.config.properties).sort()).toEqual([...known].sort());
    expect(schema.properties.config.additionalProperties).toBe(false);
  });

  it('credentialHelper.configMap: the schema takes exactly what the webhook takes (the Role is rendered from it)', () => {
    const pattern = new RegExp(schema.properties.config.properties.credentialHelper.properties.configMap.pattern);
    const webhookTakes = (v: string) => {
      try {
        parseConfig({ credentialHelper: { configMap: v } }, { ownNamespace: NS });
        return true;
      } catch {
        return false;
      }
    };
    const samples = ['kube-system/acr-configuration', 'ops/acr.config-2', '', 'a/b', 'acr-configuration', 'a/b/c', 'Kube-System/x', 'ns/', '/name', '-ns/x', 'ns/x-', `${'a'.repeat(64)}/x`, `${'a'.repeat(63)}/x`];
    for (const v of samples) expect(pattern.test(v), JSON.stringify(v)).toBe(webhookTakes(v));
    expect(samples.filter(webhookTakes).length).toBeGreaterThan(3);
  });

  it('RRSA role ARNs have the shape the webhook itself accepts', () => {
    const pattern: string = schema.properties.identity.properties.rrsa.properties.roleArn.pattern;
    expect(pattern).toBe(`^(${ROLE_ARN.source.replace(/^\^|\$$/g, '').replace(/\\\//g, '/')})?$`);
  });

  it('the chart’s default configuration is manifests/base/config.yaml’s', () => {
    const values = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
    const ctx = { ownNamespace: NS };
    expect(parseConfig(values.config, ctx)).toEqual(parseConfig(parseYaml(readFileSync(join(ROOT, 'manifests/base/config.yaml'), 'utf8')), ctx));
  });

  it('the chart’s ImageCache CRD file is the kustomize component’s', () => {
    expect(readFileSync(join(CHART, 'files/imagecache-crd.yaml'), 'utf8')).toBe(readFileSync(join(ROOT, 'manifests/components/imagecache-crd/imagecache-crd.yaml'), 'utf8'));
  });
});

describe.runIf(HELM.run && hasKubectl)(`the chart and manifests/base agree${HELM.note}`, () => {
  const base = () => kustomize(join(ROOT, 'manifests/base'));
  /** The base with the annotated-only component, built from a copy of manifests/ (the tree is never written). */
  const annotatedOnlyBase = () => {
    const dir = mkdtempSync(join(tmpdir(), 'acr-chart-kustomize-'));
    try {
      cpSync(join(ROOT, 'manifests/base'), join(dir, 'base'), { recursive: true });
      cpSync(join(ROOT, 'manifests/components'), join(dir, 'components'), { recursive: true });
      mkdirSync(join(dir, 'overlay'));
      writeFileSync(join(dir, 'overlay/kustomization.yaml'), 'resources: [../base]\ncomponents: [../components/annotated-only]\n');
      return kustomize(join(dir, 'overlay'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const withoutClient = (ws: K8sObject[]) => ws.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: undefined } }));

  it('the webhooks: names, rules, selectors, matchConditions, policies, timeouts and Service', () => {
    const chart = rendered();
    const b = base();
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      expect(withoutClient(find(chart, kind).webhooks), kind).toEqual(withoutClient(find(b, kind).webhooks));
    }
    expect(find(b, 'MutatingWebhookConfiguration').webhooks.map((w: K8sObject) => w.name)).toEqual(MUTATING);
    // annotatedOnly is the annotated-only component: the default webhook dropped, the ServiceAccount one kept.
    const annotatedOnly = find(annotatedOnlyBase(), 'MutatingWebhookConfiguration').webhooks;
    expect(annotatedOnly.map((w: K8sObject) => w.name)).toEqual([MUTATING[0], MUTATING[2]]);
    expect(withoutClient(find(rendered({ webhook: { annotatedOnly: true } }), 'MutatingWebhookConfiguration').webhooks)).toEqual(withoutClient(annotatedOnly));
  });

  it('RBAC: the same ClusterRole, leader-election and credential-helper Roles, in the same namespaces, bound to the webhook’s ServiceAccount', () => {
    const chart = rendered();
    const b = base();
    const grants = (objs: K8sObject[]) =>
      objs
        .filter((o) => ['ClusterRole', 'Role', 'ClusterRoleBinding', 'RoleBinding'].includes(o.kind))
        .map((o) => ({ kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace, rules: o.rules, roleRef: o.roleRef, subjects: o.subjects }))
        .sort((x, y) => `${x.kind}/${x.name}`.localeCompare(`${y.kind}/${y.name}`));
    expect(grants(b).map((g) => `${g.kind}/${g.namespace ?? ''}/${g.name}`)).toEqual([
      'ClusterRole//acr-pull-webhook',
      'ClusterRoleBinding//acr-pull-webhook',
      `Role/kube-system/${HELPER}`,
      'Role/acr-pull-webhook/acr-pull-webhook-leader',
      `RoleBinding/kube-system/${HELPER}`,
      'RoleBinding/acr-pull-webhook/acr-pull-webhook-leader',
    ]);
    expect(grants(chart)).toEqual(grants(b));
  });

  it('the Deployment: security contexts, priority, probes, shutdown, resources, environment, ports and mounts', () => {
    const strip = (d: K8sObject) => {
      const pod = structuredClone(d.spec.template.spec);
      // Selector labels differ (the chart adds app.kubernetes.io/instance) and so does the image reference.
      for (const t of pod.topologySpreadConstraints) delete t.labelSelector;
      for (const t of pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution) delete t.podAffinityTerm.labelSelector;
      for (const c of pod.containers) delete c.image;
      return { replicas: d.spec.replicas, pod };
    };
    const chart = find(rendered(), 'Deployment');
    const b = find(base(), 'Deployment');
    expect(strip(chart)).toEqual(strip(b));
    expect(chart.spec.template.spec.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
  });

  it('the PodDisruptionBudget, the Service ports and the Namespace’s labels', () => {
    const chart = rendered({ namespace: { create: true } });
    const b = base();
    expect(find(chart, 'PodDisruptionBudget').spec.minAvailable).toBe(find(b, 'PodDisruptionBudget').spec.minAvailable);
    expect(find(chart, 'Service').spec.ports).toEqual(find(b, 'Service').spec.ports);
    expect(find(chart, 'Namespace').metadata.labels).toMatchObject(find(b, 'Namespace').metadata.labels);
  });
});
