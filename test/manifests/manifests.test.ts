// The kustomize base, components and overlays: every file parses, every overlay builds, and the built objects
// are what manifests/README.md promises (webhooks, Deployment hardening, RBAC, certificates wiring).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/config.js';
import { filesUnder, find, hasKubectl, kustomize, LOCAL_PORT, OVERLAYS, read, ROOT, workspace, type K8sObject, type Workspace } from './helpers.js';

const NS = 'acr-pull-webhook';
const MUTATING_NAMES = ['annotated.acr-pull-webhook.k8s.aliyun.com', 'default.acr-pull-webhook.k8s.aliyun.com', 'serviceaccounts.acr-pull-webhook.k8s.aliyun.com'];
const HAS_ACR = "has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('k8s.aliyun.com/acr-'))";
const NO_ACR = "!has(object.metadata.annotations) || !object.metadata.annotations.exists(k, k.startsWith('k8s.aliyun.com/acr-'))";
const NOT_MIRROR = "!has(object.metadata.annotations) || !('kubernetes.io/config.mirror' in object.metadata.annotations)";
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'CustomResourceDefinition']);

let ws: Workspace;
const built: Record<string, K8sObject[]> = {};
const build = (rel: string) => (built[rel] ??= kustomize(join(ws.manifests, rel)));

beforeAll(() => {
  ws = workspace();
});
afterAll(() => ws?.cleanup());

describe('files', () => {
  it('every YAML file under manifests/ parses, and every Kubernetes document names its apiVersion and kind', () => {
    const files = filesUnder(join(ROOT, 'manifests'), /\.ya?ml$/);
    expect(files.length).toBeGreaterThan(12);
    for (const f of files) {
      const docs = parseAllDocuments(read(f));
      for (const doc of docs) expect(doc.errors, f).toEqual([]);
      if (f.endsWith('base/config.yaml')) continue; // the webhook's configuration file, not an object
      for (const doc of docs) {
        const o = doc.toJS();
        if (o === null) continue;
        expect(typeof o.apiVersion, f).toBe('string');
        expect(typeof o.kind, f).toBe('string');
      }
    }
  });

  it('the ConfigMap’s config.yaml is accepted by the webhook’s own parser, and so are its commented examples', () => {
    const text = read(join(ROOT, 'manifests/base/config.yaml'));
    const ctx = { ownNamespace: NS };
    const config = parseConfig(parseYaml(text), ctx, 'config.yaml');
    expect(config).toBeDefined();
    // Uncomment the registries example: it must be valid as written.
    const lines = text.split('\n');
    const i = lines.findIndex((l) => l.startsWith('registries: []'));
    expect(i).toBeGreaterThanOrEqual(0);
    lines[i] = 'registries:';
    for (let j = i + 1; lines[j]?.startsWith('#  '); j++) lines[j] = lines[j]!.slice(1);
    const withRegistry = parseConfig(parseYaml(lines.join('\n')), ctx, 'config.yaml with the example registry') as unknown as { registries: unknown[] };
    expect(withRegistry.registries).toHaveLength(1);
  });

  it('the shipped config.yaml pins no region: ALIBABA_CLOUD_REGION_ID decides, as manifests/README.md says', () => {
    const doc = parseYaml(read(join(ROOT, 'manifests/base/config.yaml')));
    expect(doc).not.toHaveProperty('defaultRegion');
    expect(doc.discovery ?? {}).not.toHaveProperty('regions');
    expect(parseConfig(doc, { ownNamespace: NS, regionFromEnv: 'ap-southeast-1' }).defaultRegion).toBe('ap-southeast-1');
    expect(parseConfig(doc, { ownNamespace: NS }).defaultRegion).toBeUndefined();
    const readme = read(join(ROOT, 'manifests/README.md'));
    expect(readme).toContain('`ALIBABA_CLOUD_REGION_ID` is the default region');
  });

  it('generated files and private keys are git-ignored', () => {
    for (const p of ['manifests/overlays/local/generated/webhook.env', 'manifests/overlays/certs-script/generated/tls-secret.yaml', 'certs/out/ca.key']) {
      expect(execFileSync('git', ['check-ignore', p], { cwd: ROOT, encoding: 'utf8' }).trim()).toBe(p);
    }
  });
});

describe.runIf(hasKubectl)('kustomize', () => {
  it.each(['base', ...OVERLAYS])('builds %s', (rel) => {
    const objs = build(rel);
    expect(objs.length).toBeGreaterThan(8);
    for (const o of objs) {
      expect(o.metadata?.name, `${o.kind} without a name`).toBeTruthy();
      // The one exception: reading the credential helper's ConfigMap needs a Role where it lives.
      const expected = o.metadata.name === 'acr-pull-webhook-credential-helper' ? 'kube-system' : NS;
      if (!CLUSTER_SCOPED.has(o.kind)) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(expected);
    }
    // The standard labels; never the one that marks the pull Secrets the webhook manages (and deletes when idle).
    for (const o of objs.filter((x) => x.kind !== 'CustomResourceDefinition')) {
      expect(o.metadata.labels, `${o.kind}/${o.metadata.name}`).toMatchObject({ 'app.kubernetes.io/name': 'acr-pull-webhook', 'app.kubernetes.io/part-of': 'acr-pull-webhook' });
    }
    expect(JSON.stringify(objs)).not.toContain('"app.kubernetes.io/managed-by":"acr-pull-webhook"');
    // Build-time helpers never reach the cluster.
    expect(objs.filter((o) => o.metadata?.annotations?.['config.kubernetes.io/local-config'])).toEqual([]);
    expect(objs.map((o) => o.metadata.name)).not.toContain('acr-pull-webhook-client-config');
  });

  it.each(['imagecache-crd', 'annotated-only'])('the %s component builds on top of the base', (component) => {
    const dir = join(ws.manifests, 'overlays', `with-${component}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'kustomization.yaml'), `resources: [../../base]\ncomponents: [../../components/${component}]\n`);
    expect(kustomize(dir).length).toBeGreaterThan(8);
  });

  it('names line up: labels and selectors, Service and webhook ports, Secret, ConfigMap and mounts', () => {
    const objs = build('overlays/certs-script');
    const d = find(objs, 'Deployment', NS);
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    const labels = d.spec.template.metadata.labels;
    const selects = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
    expect(selects(d.spec.selector.matchLabels)).toBe(true);
    expect(selects(find(objs, 'Service', NS).spec.selector)).toBe(true);
    expect(selects(find(objs, 'PodDisruptionBudget', NS).spec.selector.matchLabels)).toBe(true);
    expect(selects(pod.topologySpreadConstraints[0].labelSelector.matchLabels)).toBe(true);
    expect(selects(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.labelSelector.matchLabels)).toBe(true);

    const svc = find(objs, 'Service', NS);
    const https = svc.spec.ports.find((p: K8sObject) => p.port === 443);
    expect(c.ports.find((p: K8sObject) => p.name === https.targetPort).containerPort).toBe(8443);
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      for (const w of find(objs, kind).webhooks) expect(w.clientConfig.service).toMatchObject({ name: svc.metadata.name, namespace: NS, port: 443 });
    }
    expect(pod.serviceAccountName).toBe(find(objs, 'ServiceAccount').metadata.name);

    const env = Object.fromEntries(c.env.map((e: K8sObject) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({
      PORT: '8443',
      METRICS_PORT: '9090',
      TLS_CERT_FILE: '/etc/acr-pull-webhook/tls/tls.crt',
      TLS_KEY_FILE: '/etc/acr-pull-webhook/tls/tls.key',
      CONFIG_FILE: '/etc/acr-pull-webhook/config/config.yaml',
      POD_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      LOG_LEVEL: 'info',
    });
    expect(c.ports.find((p: K8sObject) => p.name === 'metrics').containerPort).toBe(Number(env.METRICS_PORT));
    const mount = (name: string) => c.volumeMounts.find((m: K8sObject) => m.name === name);
    const volume = (name: string) => pod.volumes.find((v: K8sObject) => v.name === name);
    expect(`${mount('tls').mountPath}/tls.crt`).toBe(env.TLS_CERT_FILE);
    expect(`${mount('config').mountPath}/config.yaml`).toBe(env.CONFIG_FILE);
    const secret = find(objs, 'Secret', volume('tls').secret.secretName);
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data).sort()).toEqual(['tls.crt', 'tls.key']);
    expect(Object.keys(find(objs, 'ConfigMap', volume('config').configMap.name).data)).toEqual(['config.yaml']);
    expect(volume('tls').secret.secretName).toBe('acr-pull-webhook-tls');
    expect(volume('config').configMap.name).toBe('acr-pull-webhook-config');
  });
});

describe.runIf(hasKubectl)('the MutatingWebhookConfiguration', () => {
  it('three webhooks: annotated objects fail closed, the rest fail open, ServiceAccounts fail open', () => {
    const mwc = find(build('base'), 'MutatingWebhookConfiguration', 'acr-pull-webhook');
    expect(mwc.webhooks.map((w: K8sObject) => [w.name, w.failurePolicy])).toEqual([
      [MUTATING_NAMES[0], 'Fail'],
      [MUTATING_NAMES[1], 'Ignore'],
      [MUTATING_NAMES[2], 'Ignore'],
    ]);
  });

  it('ServiceAccounts: CREATE (the helper\'s Secret from the start) and UPDATE (annotations checked), every one (no matchConditions), the same opt-outs', () => {
    const sa = find(build('base'), 'MutatingWebhookConfiguration').webhooks[2];
    expect(sa).toMatchObject({ admissionReviewVersions: ['v1'], sideEffects: 'NoneOnDryRun', reinvocationPolicy: 'IfNeeded', matchPolicy: 'Equivalent', timeoutSeconds: 5 });
    expect(sa.rules).toEqual([{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['serviceaccounts'], scope: 'Namespaced' }]);
    expect(sa.matchConditions).toBeUndefined();
    expect(sa.objectSelector).toBeUndefined();
    expect(sa.namespaceSelector).toEqual(find(build('base'), 'MutatingWebhookConfiguration').webhooks[0].namespaceSelector);
    expect(sa.clientConfig.service.path).toBe('/mutate');
  });

  it('each Pod webhook: CREATE of Pods and ImageCaches, v1 reviews, NoneOnDryRun, IfNeeded, Equivalent, 5 s, the namespace opt-outs', () => {
    for (const w of find(build('base'), 'MutatingWebhookConfiguration').webhooks.slice(0, 2)) {
      expect(w).toMatchObject({ admissionReviewVersions: ['v1'], sideEffects: 'NoneOnDryRun', reinvocationPolicy: 'IfNeeded', matchPolicy: 'Equivalent', timeoutSeconds: 5 });
      expect(w.rules).toEqual([
        { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' },
        // ImageCaches are cluster-scoped: the namespaceSelector does not apply to them.
        { apiGroups: ['eci.alibabacloud.com'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['imagecaches'], scope: 'Cluster' },
      ]);
      expect(w.namespaceSelector).toEqual({
        matchExpressions: [
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', NS] },
          { key: 'acr-pull-webhook.k8s.aliyun.com/ignore', operator: 'NotIn', values: ['true'] },
        ],
      });
      // An objectSelector can be dodged by labelling; it is not used.
      expect(w.objectSelector).toBeUndefined();
      expect(w.clientConfig.service.path).toBe('/mutate');
    }
  });

  it('matchConditions: mirror Pods never match; the two webhooks split all other objects exactly', () => {
    const [annotated, rest] = find(build('base'), 'MutatingWebhookConfiguration').webhooks;
    expect(annotated.matchConditions).toEqual([
      { name: 'not-a-mirror-pod', expression: NOT_MIRROR },
      { name: 'has-acr-annotations', expression: HAS_ACR },
    ]);
    expect(rest.matchConditions).toEqual([
      { name: 'not-a-mirror-pod', expression: NOT_MIRROR },
      { name: 'no-acr-annotations', expression: NO_ACR },
    ]);
    // De Morgan: NO_ACR is exactly !(HAS_ACR), written so that annotations is only read behind has().
    expect(NO_ACR).toBe(`!${HAS_ACR.split(' && ')[0]} || !${HAS_ACR.split(' && ')[1]}`);
    for (const e of [NOT_MIRROR, HAS_ACR, NO_ACR]) {
      const guard = e.indexOf('has(object.metadata.annotations)');
      const use = e.indexOf('object.metadata.annotations', guard + 'has(object.metadata.annotations)'.length);
      expect(guard).toBeGreaterThanOrEqual(0);
      expect(use).toBeGreaterThan(guard);
    }
  });

  it('the two webhooks differ only in name, failurePolicy and the annotation condition', () => {
    const [a, b] = find(build('base'), 'MutatingWebhookConfiguration').webhooks;
    const strip = (w: K8sObject) => ({ ...w, name: undefined, failurePolicy: undefined, matchConditions: w.matchConditions.slice(0, 1) });
    expect(strip(a)).toEqual(strip(b));
  });

  it('the validating webhook for workload templates is early feedback only: Ignore, no side effects', () => {
    const vwc = find(build('base'), 'ValidatingWebhookConfiguration', 'acr-pull-webhook');
    for (const w of vwc.webhooks) {
      expect(w).toMatchObject({ admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Ignore', timeoutSeconds: 5 });
      expect(w.clientConfig.service.path).toBe('/validate');
    }
  });

  it('the validating webhook is sent only workloads whose template (or own metadata) has ACR annotations, every field read behind has()', () => {
    const [w] = find(build('base'), 'ValidatingWebhookConfiguration').webhooks;
    expect(w.matchConditions.map((c: K8sObject) => c.name)).toEqual(['has-acr-annotations']);
    const alternatives: string[] = w.matchConditions[0].expression.split(' || ');
    const paths = ['object.metadata', 'object.spec.template.metadata', 'object.spec.jobTemplate.spec.template.metadata'];
    expect(alternatives).toHaveLength(paths.length);
    alternatives.forEach((alt, i) => {
      expect(alt).toContain(`${paths[i]}.annotations.exists(k, k.startsWith('k8s.aliyun.com/acr-'))`);
      // Each step of the path is guarded before it is read: has(object.spec), has(object.spec.template), ...
      const steps = paths[i]!.split('.').slice(1).concat('annotations');
      for (let n = 1; n < steps.length; n++) expect(alt, `${paths[i]}: guard for ${steps.slice(0, n + 1).join('.')}`).toContain(`has(object.${steps.slice(0, n + 1).join('.')})`);
    });
  });
});

describe.runIf(hasKubectl)('the Deployment', () => {
  it('2 replicas spread across nodes, a PodDisruptionBudget, probes, requests and limits', () => {
    const objs = build('base');
    const d = find(objs, 'Deployment', NS);
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    expect(d.spec.replicas).toBe(2);
    expect(pod.topologySpreadConstraints[0]).toMatchObject({ topologyKey: 'kubernetes.io/hostname', maxSkew: 1 });
    expect(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey).toBe('kubernetes.io/hostname');
    expect(find(objs, 'PodDisruptionBudget', NS).spec.minAvailable).toBe(1);
    // A webhook on failurePolicy Fail must not be preempted.
    expect(pod.priorityClassName).toBe('system-cluster-critical');
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'https', scheme: 'HTTPS' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'https', scheme: 'HTTPS' });
    expect(Object.keys(c.resources.requests).sort()).toEqual(['cpu', 'memory']);
    expect(Object.keys(c.resources.limits).sort()).toEqual(['cpu', 'memory']);
    const mi = (q: string) => Number(q.replace(/Mi$/, ''));
    const nodeOptions: string = c.env.find((e: K8sObject) => e.name === 'NODE_OPTIONS').value;
    const heap = Number(/--max-old-space-size=(\d+)/.exec(nodeOptions)![1]);
    const semi = Number(/--max-semi-space-size=(\d+)/.exec(nodeOptions)?.[1] ?? 16);
    // The old-space cap is not the whole process: the young generation (two semi-spaces) and about 64 MiB
    // outside the V8 heap (binary, OpenSSL, buffers) come on top, and must still fit under the limit.
    expect(heap + 2 * semi + 64).toBeLessThanOrEqual(mi(c.resources.limits.memory));
  });

  it('non-root, read-only root filesystem, no privilege escalation, no capabilities, seccomp RuntimeDefault', () => {
    const pod = find(build('base'), 'Deployment').spec.template.spec;
    expect(pod.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    for (const c of pod.containers) {
      expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    }
    // The image's user (Dockerfile USER) is the one the Pod insists on.
    expect(read(join(ROOT, 'Dockerfile'))).toMatch(/^USER 65532:65532$/m);
    // The namespace enforces (and warns about) the restricted Pod Security Standard.
    expect(find(build('base'), 'Namespace', NS).metadata.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' });
  });

  it('graceful shutdown without a shell: a preStop sleep action within a 30 s grace period', () => {
    const pod = find(build('base'), 'Deployment').spec.template.spec;
    expect(pod.terminationGracePeriodSeconds).toBe(30);
    expect(pod.containers[0].lifecycle.preStop).toEqual({ sleep: { seconds: 5 } });
    expect(JSON.stringify(pod)).not.toMatch(/"exec"|\/bin\/sh|"sh"/);
  });
});

describe.runIf(hasKubectl)('RBAC', () => {
  const GRANTS: Record<string, string[]> = {
    '/secrets': ['get', 'list', 'watch', 'create', 'update', 'delete'],
    '/pods': ['list', 'watch'],
    '/namespaces': ['list', 'watch'],
    'eci.alibabacloud.com/imagecaches': ['list', 'watch'],
    '/serviceaccounts': ['list', 'watch', 'patch'],
    '/events': ['create', 'patch'],
    'events.k8s.io/events': ['create', 'patch'],
  };

  function grants(rules: K8sObject[], names?: string[]): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const r of rules) {
      expect(r.resourceNames).toEqual(names);
      for (const g of r.apiGroups) for (const res of r.resources) (out[`${g}/${res}`] ??= []).push(...r.verbs);
    }
    return out;
  }

  it('exactly the documented verbs: a ClusterRole for Secrets, Pods, Namespaces, ImageCaches, ServiceAccounts and Events; a Role for the Lease; one for the helper\'s ConfigMap by name', () => {
    const objs = build('base');
    const clusterRules = find(objs, 'ClusterRole', 'acr-pull-webhook').rules as K8sObject[];
    expect(grants(clusterRules.filter((r) => !r.resourceNames))).toEqual(GRANTS);
    // Its own MutatingWebhookConfiguration only, by the name the Deployment tells the webhook.
    expect(grants(clusterRules.filter((r) => r.resourceNames), ['acr-pull-webhook'])).toEqual({ 'admissionregistration.k8s.io/mutatingwebhookconfigurations': ['get', 'patch'] });
    const env = find(objs, 'Deployment', 'acr-pull-webhook').spec.template.spec.containers[0].env as { name: string; value?: string }[];
    expect(env.find((e) => e.name === 'WEBHOOK_CONFIGURATION_NAME')?.value).toBe(find(objs, 'MutatingWebhookConfiguration', 'acr-pull-webhook').metadata.name);
    const role = find(objs, 'Role', 'acr-pull-webhook-leader');
    expect(role.metadata.namespace).toBe(NS);
    expect(grants(role.rules)).toEqual({ 'coordination.k8s.io/leases': ['get', 'create', 'update'] });
    const helper = find(objs, 'Role', 'acr-pull-webhook-credential-helper');
    expect(helper.metadata.namespace).toBe('kube-system');
    expect(grants(helper.rules, ['acr-configuration'])).toEqual({ '/configmaps': ['list', 'watch'] });
    expect(objs.filter((o) => o.kind === 'Role')).toHaveLength(2);
    for (const kind of ['ClusterRoleBinding', 'RoleBinding']) {
      for (const b of objs.filter((o) => o.kind === kind)) expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'acr-pull-webhook', namespace: NS }]);
    }
    expect(find(objs, 'RoleBinding', 'acr-pull-webhook-credential-helper')).toMatchObject({ metadata: { namespace: 'kube-system' }, roleRef: { kind: 'Role', name: 'acr-pull-webhook-credential-helper' } });
    expect(JSON.stringify(objs.filter((o) => /Role$/.test(o.kind)))).not.toContain('"*"');
  });

  it('covers every Kubernetes API call in src/ (a new call without a grant fails here, not in production)', () => {
    const needed = new Set<string>();
    const res: Record<string, string> = {
      Secret: '/secrets',
      Event: '/events',
      Lease: 'coordination.k8s.io/leases',
      Pod: '/pods',
      Namespace: '/namespaces',
      ServiceAccount: '/serviceaccounts',
      ConfigMap: '/configmaps',
    };
    const verb: Record<string, string> = { read: 'get', list: 'list', create: 'create', replace: 'update', patch: 'patch', delete: 'delete' };
    const srcFiles = filesUnder(join(ROOT, 'src'), /\.ts$/);
    const all = srcFiles.map(read).join('\n');
    const constant = (name: string) => new RegExp(`${name}\\s*=\\s*'([^']+)'`).exec(all)?.[1];
    for (const text of srcFiles.map(read)) {
      for (const m of text.matchAll(/\.(read|list|create|replace|patch|delete)Namespaced(Secret|Event|Lease|Pod|ServiceAccount|ConfigMap)\(/g)) needed.add(`${res[m[2]!]} ${verb[m[1]!]}`);
      for (const m of text.matchAll(/\.(list|delete)(Secret|Pod|ServiceAccount)ForAllNamespaces\(/g)) needed.add(`${res[m[2]!]} ${verb[m[1]!]}`);
      if (/\.listNamespace\(/.test(text)) needed.add('/namespaces list');
      for (const m of text.matchAll(/(?:makeInformer<\w+>\([^,]+,\s*|new ListWatch<\w+>\()'\/api\/v1\/(\w+)'/g)) needed.add(`/${m[1]} list`).add(`/${m[1]} watch`);
      // A watch: client-node's Watch called here, or a ReflectorSource (src/kube/reflector.ts watches its path).
      if (/\.watch\(|ReflectorSource</.test(text)) for (const m of text.matchAll(/['`]\/api\/v1\/(?:namespaces\/\$\{[^}]+\}\/)?(\w+)['`]/g)) needed.add(`/${m[1]} watch`);
      for (const m of text.matchAll(/\.(read|patch)MutatingWebhookConfiguration\(/g)) needed.add(`admissionregistration.k8s.io/mutatingwebhookconfigurations ${verb[m[1]!]}`);
      if (/\.listClusterCustomObject\(/.test(text)) needed.add(`${constant('IMAGE_CACHE_GROUP')}/${constant('IMAGE_CACHE_PLURAL')} list`);
    }
    // The scan must keep finding what the webhook is known to do; an empty scan would prove nothing.
    expect([...needed]).toEqual(
      expect.arrayContaining([
        '/secrets create',
        '/secrets watch',
        'coordination.k8s.io/leases update',
        '/namespaces watch',
        'eci.alibabacloud.com/imagecaches list',
        '/serviceaccounts list',
        '/serviceaccounts watch',
        '/serviceaccounts patch',
        '/configmaps list',
        '/configmaps watch',
        'admissionregistration.k8s.io/mutatingwebhookconfigurations patch',
      ]),
    );
    const objs = build('base');
    const clusterRules = find(objs, 'ClusterRole').rules as K8sObject[];
    const granted = {
      ...grants(clusterRules.filter((r) => !r.resourceNames)),
      ...grants(clusterRules.filter((r) => r.resourceNames), ['acr-pull-webhook']),
      ...grants(find(objs, 'Role', 'acr-pull-webhook-leader').rules),
      ...grants(find(objs, 'Role', 'acr-pull-webhook-credential-helper').rules, ['acr-configuration']),
    };
    const missing = [...needed].filter((n) => {
      const [resource, v] = n.split(' ');
      return !granted[resource!]?.includes(v!);
    });
    expect(missing).toEqual([]);
  });
});

describe.runIf(hasKubectl)('overlays', () => {
  it('cert-manager: self-signed root, CA Issuer, serving Certificate for the Service names, CA injection everywhere', () => {
    const objs = build('overlays/cert-manager');
    expect(objs.filter((o) => o.kind === 'Issuer').map((o) => Object.keys(o.spec)[0]).sort()).toEqual(['ca', 'selfSigned']);
    const ca = find(objs, 'Certificate', 'acr-pull-webhook-ca');
    expect(ca.spec.isCA).toBe(true);
    expect(find(objs, 'Issuer', 'acr-pull-webhook-ca').spec.ca.secretName).toBe(ca.spec.secretName);
    const serving = find(objs, 'Certificate', 'acr-pull-webhook-serving');
    expect(serving.spec.dnsNames).toEqual([`acr-pull-webhook.${NS}.svc`, `acr-pull-webhook.${NS}.svc.cluster.local`]);
    expect(serving.spec.secretName).toBe('acr-pull-webhook-tls');
    expect(serving.spec.issuerRef).toEqual({ name: 'acr-pull-webhook-ca', kind: 'Issuer' });
    expect(serving.spec.usages).toContain('server auth');
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const o = find(objs, kind);
      expect(o.metadata.annotations).toEqual({ 'cert-manager.io/inject-ca-from': `${NS}/acr-pull-webhook-serving` });
      for (const w of o.webhooks) expect(w.clientConfig.caBundle).toBeUndefined();
    }
    expect(find(objs, 'Secret')).toBeUndefined(); // cert-manager writes it
  });

  it('certs-script: the TLS Secret from the script and its CA in every caBundle, the Service kept', () => {
    const objs = build('overlays/certs-script');
    const ca = read(join(ws.certs, 'ca.crt'));
    const secret = find(objs, 'Secret', 'acr-pull-webhook-tls');
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Buffer.from(secret.data['tls.crt'], 'base64').toString()).toBe(read(join(ws.certs, `acr-pull-webhook.${NS}`, 'tls.crt')));
    expect(Buffer.from(secret.data['tls.key'], 'base64').toString()).toBe(read(join(ws.certs, `acr-pull-webhook.${NS}`, 'tls.key')));
    const hooks = objs.filter((o) => o.kind.endsWith('WebhookConfiguration')).flatMap((o) => o.webhooks);
    expect(hooks).toHaveLength(4);
    for (const w of hooks) {
      expect(Buffer.from(w.clientConfig.caBundle, 'base64').toString()).toBe(ca);
      expect(w.clientConfig.service.name).toBe('acr-pull-webhook');
      expect(w.clientConfig.url).toBeUndefined();
    }
  });

  it('local: every webhook calls https://127.0.0.1:<port> with the CA, no in-cluster workload, the CRD included', () => {
    const objs = build('overlays/local');
    const kinds = objs.map((o) => o.kind);
    for (const k of ['Deployment', 'Service', 'PodDisruptionBudget', 'Secret']) expect(kinds).not.toContain(k);
    expect(find(objs, 'CustomResourceDefinition', 'imagecaches.eci.alibabacloud.com')).toBeDefined();
    const ca = read(join(ws.certs, 'ca.crt'));
    const urls = (kind: string) =>
      find(objs, kind).webhooks.map((w: K8sObject) => {
        expect(w.clientConfig.service).toBeUndefined();
        expect(Buffer.from(w.clientConfig.caBundle, 'base64').toString()).toBe(ca);
        return w.clientConfig.url;
      });
    expect(urls('MutatingWebhookConfiguration')).toEqual([`https://127.0.0.1:${LOCAL_PORT}/mutate`, `https://127.0.0.1:${LOCAL_PORT}/mutate`, `https://127.0.0.1:${LOCAL_PORT}/mutate`]);
    expect(urls('ValidatingWebhookConfiguration')).toEqual([`https://127.0.0.1:${LOCAL_PORT}/validate`]);
    // Everything else is the base as is.
    const base = build('base');
    expect(find(objs, 'MutatingWebhookConfiguration').webhooks.map((w: K8sObject) => ({ ...w, clientConfig: undefined }))).toEqual(
      find(base, 'MutatingWebhookConfiguration').webhooks.map((w: K8sObject) => ({ ...w, clientConfig: undefined })),
    );
  });

  it('an overlay whose generated inputs are missing fails to build with a message that names them', () => {
    const dir = join(ws.dir, 'fresh');
    execFileSync('cp', ['-r', ws.manifests, dir]);
    execFileSync('rm', ['-rf', join(dir, 'overlays/local/generated')]);
    expect(() => kustomize(join(dir, 'overlays/local'))).toThrow(/generated\/webhook\.env/);
  });

  it('the annotated-only component drops the fail-open default Pod webhook and nothing else', () => {
    const dir = join(ws.manifests, 'overlays', 'annotated-only-check');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'kustomization.yaml'), 'resources: [../certs-script]\ncomponents: [../../components/annotated-only]\n');
    const objs = kustomize(dir);
    const full = find(build('overlays/certs-script'), 'MutatingWebhookConfiguration');
    expect(find(objs, 'MutatingWebhookConfiguration').webhooks).toEqual([full.webhooks[0], full.webhooks[2]]);
    expect(full.webhooks[0].name).toBe(MUTATING_NAMES[0]);
    expect(objs.length).toBe(build('overlays/certs-script').length);
  });
});

describe.runIf(hasKubectl)('the ImageCache CRD component', () => {
  it('eci.alibabacloud.com/v1 ImageCache, cluster-scoped, with a validated spec', () => {
    const crd = find(kustomize(join(ws.manifests, 'overlays/local')), 'CustomResourceDefinition');
    expect(crd.spec).toMatchObject({ group: 'eci.alibabacloud.com', scope: 'Cluster', names: { kind: 'ImageCache', plural: 'imagecaches' } });
    expect(crd.spec.versions.map((v: K8sObject) => [v.name, v.served, v.storage])).toEqual([['v1', true, true]]);
    const spec = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec;
    expect(spec.required).toEqual(['images']);
    expect(spec.properties.images).toMatchObject({ type: 'array', minItems: 1, items: { type: 'string' } });
    expect(spec.properties.imagePullSecrets).toMatchObject({ type: 'array', items: { type: 'string' } });
    expect(spec.properties.imageCacheSize).toMatchObject({ type: 'integer', minimum: 20, maximum: 32768 });
    expect(spec.properties.retentionDays).toMatchObject({ type: 'integer', minimum: 1, maximum: 65536 });
    // "namespace:name" references, as the webhook writes them.
    const re = new RegExp(spec.properties.imagePullSecrets.items.pattern);
    expect(re.test('team-a:acr-pull-0123abcd')).toBe(true);
    expect(re.test('acr-pull-0123abcd')).toBe(false);
    expect(re.test('Team:x')).toBe(false);
  });
});
