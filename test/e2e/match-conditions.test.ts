// No call at all for Pods that need nothing, on a real API server: the leader writes the generated matchCondition
// into its MutatingWebhookConfiguration, kube-apiserver evaluates it (and calls the webhook over HTTP/2), and the
// webhook's own call count says which Pods reached it.
import { celEnv, isCelError, parse, plan } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from './support/harness.js';
import { apiserverMetrics, metricSum, startStack, webhookMetrics, type Stack } from './support/stack.js';

const SVC = 'acs:ram::1234567890123456:role/acr-pull';
const NS = 'team-send';
const DEFAULT = 'default.acr-pull-webhook.k8s.aliyun.com';
const BASE_CONFIG = ['defaultRegion: cn-hangzhou', 'credentials: {sessionDurationSeconds: 900, refreshThreshold: 40s}'];

let s: Stack;
let w: Awaited<ReturnType<Stack['webhook']>>;

beforeAll(async () => {
  s = await startStack('match-conditions');
  await s.k.createNamespace(NS);
  w = await s.webhook('webhook-send', { config: BASE_CONFIG, env: { WEBHOOK_CONFIGURATION_NAME: 'acr-pull-webhook' } });
});
afterAll(async () => {
  await s?.stop();
});

const mwc = () => s.k.json(['get', 'mutatingwebhookconfiguration', 'acr-pull-webhook']);
const generated = async (): Promise<string | undefined> =>
  (await mwc()).webhooks.find((h: { name: string }) => h.name === DEFAULT)?.matchConditions?.find((c: { name: string }) => c.name === 'needs-acr-pull-webhook')?.expression;
/** Reviews of Pods the webhook answered (its own histogram), and the API server's calls to the default webhook. */
const calls = async () => ({
  webhook: metricSum(await webhookMetrics(w.metricsPort), 'acr_webhook_admission_duration_seconds_count', { kind: 'Pod' }),
  apiserver: metricSum(await apiserverMetrics(s.k), 'apiserver_admission_webhook_admission_duration_seconds_count', { name: DEFAULT }),
});
const pod = (name: string, image: string, extra: { annotations?: Record<string, string>; serviceAccountName?: string } = {}) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: { containers: [{ name: 'a', image }], ...(extra.serviceAccountName ? { serviceAccountName: extra.serviceAccountName } : {}) },
  });
const pullSecrets = async (name: string): Promise<string[]> => ((await s.k.json(['get', 'pod', name, '-n', NS])).spec.imagePullSecrets ?? []).map((r: { name: string }) => r.name);

describe('generated matchConditions on a real API server', () => {
  it('1. the leader adds its condition to the default webhook, next to the static ones; the annotated webhook is untouched', async () => {
    const expression = await until('the generated condition', generated, 30_000);
    expect(expression).toContain("request.kind.kind == 'Pod'");
    const hooks = (await mwc()).webhooks;
    expect(hooks.find((h: { name: string }) => h.name === DEFAULT).matchConditions.map((c: { name: string }) => c.name)).toEqual(['not-a-mirror-pod', 'no-acr-annotations', 'needs-acr-pull-webhook']);
    expect(hooks.find((h: { name: string }) => h.name.startsWith('annotated.')).matchConditions).toHaveLength(2);
    expect(w.log()).toContain('matchConditions updated');
  });

  it('2. 100 plain Pods of a Deployment: not one call to the webhook (its count and the API server\'s)', async () => {
    const before = await calls();
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'plain', namespace: NS },
      spec: { replicas: 100, selector: { matchLabels: { app: 'plain' } }, template: { metadata: { labels: { app: 'plain' } }, spec: { containers: [{ name: 'a', image: 'nginx:1.27' }] } } },
    };
    await s.k.ok(['apply', '-f', '-'], JSON.stringify(deployment));
    await until('100 Pods', async () => ((await s.k.json(['get', 'pods', '-n', NS, '-l', 'app=plain'])).items.length === 100 ? true : undefined), 120_000);
    const after = await calls();
    expect(after.webhook - before.webhook).toBe(0);
    expect(after.apiserver - before.apiserver).toBe(0);
    // The API server did look at them: each was excluded by a match condition.
    expect(metricSum(await apiserverMetrics(s.k), 'apiserver_admission_match_condition_exclusions_total', { name: DEFAULT })).toBeGreaterThanOrEqual(100);
    await s.k.ok(['delete', 'deployment', 'plain', '-n', NS, '--wait=false']);
  });

  it('3. an annotated Pod is still served, and the API server spoke HTTP/2 to the webhook', async () => {
    const before = await calls();
    await s.k.ok(['apply', '-f', '-'], pod('annotated', 'demo-registry.cn-hangzhou.cr.aliyuncs.com/app/web:1', { annotations: { 'k8s.aliyun.com/acr-service-arns': SVC } }));
    expect(await pullSecrets('annotated')).toEqual([expect.stringMatching(/^acr-pull-[0-9a-f]{20}$/)]);
    expect((await calls()).webhook - before.webhook).toBe(1);
    const text = await webhookMetrics(w.metricsPort);
    // Only the API server connects to the review port in this file: every connection was HTTP/2.
    expect(metricSum(text, 'acr_webhook_connections_total', { protocol: 'h2' })).toBeGreaterThanOrEqual(1);
    expect(metricSum(text, 'acr_webhook_connections_total', { protocol: 'http/1.1' })).toBe(0);
  });

  it('4. a registry added to the configuration: the condition follows within seconds, and a Pod on it without annotations is served', async () => {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      w.configFile,
      [...BASE_CONFIG, 'registries:', `  - {instanceId: cri-demo0000000001, region: cn-hangzhou, domains: [demo-registry.cn-hangzhou.cr.aliyuncs.com, registry.example.com], serviceArn: '${SVC}'}`, ''].join('\n'),
    );
    await until('the condition to name the configured registry', async () => ((await generated())?.includes("'registry.example.com': true") ? true : undefined), 30_000);
    await s.k.ok(['apply', '-f', '-'], pod('configured', 'registry.example.com/app/web:1'));
    expect(await pullSecrets('configured')).toEqual([expect.stringMatching(/^acr-pull-[0-9a-f]{20}$/)]);
    // And a Docker Hub Pod still is not sent.
    const before = await calls();
    await s.k.ok(['apply', '-f', '-'], pod('hub', 'nginx:1.27'));
    expect((await calls()).webhook - before.webhook).toBe(0);
  });

  it('5. an annotated ServiceAccount: the condition names it, and its Pods are sent and served', async () => {
    await s.k.ok(['create', 'serviceaccount', 'builder', '-n', NS]);
    await s.k.ok(['annotate', 'serviceaccount', 'builder', '-n', NS, `k8s.aliyun.com/acr-service-arns=${SVC}`]);
    await until('the condition to name the ServiceAccount', async () => ((await generated())?.includes(`'${NS}/builder': true`) ? true : undefined), 30_000);
    await s.k.ok(['apply', '-f', '-'], pod('by-account', 'demo-registry.cn-hangzhou.cr.aliyuncs.com/app/web:1', { serviceAccountName: 'builder' }));
    expect(await pullSecrets('by-account')).toEqual([expect.stringMatching(/^acr-pull-[0-9a-f]{20}$/)]);
  });

  it('6. the API server and the unit tests\' CEL evaluator agree Pod by Pod (server-side dry runs)', async () => {
    const expression = (await generated())!;
    const run = plan(celEnv({ funcs: strings }), parse(expression));
    const images = [
      'nginx:1.27',
      'library/nginx',
      'registry.example.com/app:1',
      'REGISTRY.EXAMPLE.COM/app:1',
      'registry.example.com:5000/app:1',
      'demo-registry.cn-hangzhou.cr.aliyuncs.com/app:1',
      'demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com/app:1',
      'registry.cn-hangzhou.aliyuncs.com/ns/app:1',
      'ghcr.io/org/app:1',
      'localhost:5000/app',
    ];
    const accounts = ['default', 'builder'];
    let sent = 0;
    for (const image of images) {
      for (const sa of accounts) {
        const object = JSON.parse(pod('dry', image, { serviceAccountName: sa }));
        const predicted = run({ object, request: { kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: NS, operation: 'CREATE' } } as never);
        expect(isCelError(predicted), String(predicted)).toBe(false);
        const before = (await calls()).webhook;
        await s.k.ok(['create', '--dry-run=server', '-f', '-'], JSON.stringify(object));
        const called = (await calls()).webhook - before;
        expect(called, `${image} as ${sa}`).toBe(predicted ? 1 : 0);
        if (predicted) sent++;
      }
    }
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(images.length * accounts.length);
  });

  it('7. kubectl apply -k again (the static conditions) leaves the generated entry in place', async () => {
    const before = await generated();
    await s.k.ok(['apply', '-k', 'manifests/overlays/local']);
    expect(await until('the generated condition after apply', generated, 40_000)).toBe(before);
  });
});
