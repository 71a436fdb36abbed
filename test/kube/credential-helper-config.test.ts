// The credential helper's ConfigMap as the watch delivers it: read on every change, a bad version refused with an
// Event and a metric while the previous one stays, unhonoured fields named once; ServiceAccounts reduced for the
// cache; their references counted as use.
import { describe, expect, it } from 'vitest';
import { CredentialHelperConfig } from '../../src/kube/credential-helper-config.js';
import type { ConfigMapData } from '../../src/kube/config-map-watch.js';
import { toServiceAccountInfo } from '../../src/kube/service-accounts.js';
import { withServiceAccountReferences } from '../../src/kube/usage.js';

function setup() {
  let cm: ConfigMapData | undefined;
  let listener = () => {};
  const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  const log = (level: string) => (obj: object, msg?: string) => lines.push({ level, msg: msg ?? '', obj: obj as Record<string, unknown> });
  const events: string[] = [];
  let invalid = 0;
  let changes = 0;
  const config = new CredentialHelperConfig({
    source: { current: () => cm, onChange: (l) => (listener = l) },
    location: 'kube-system/acr-configuration',
    defaultRegion: () => 'cn-hangzhou',
    isExcluded: (ns) => ns === 'kube-system',
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    recordEvent: async (c, type, reason, message) => {
      events.push(`${c.namespace}/${c.name} ${type} ${reason}: ${message}`);
    },
    onInvalid: () => invalid++,
    onChange: () => changes++,
  });
  let rv = 0;
  const put = (data: Record<string, string> | undefined) => {
    cm = data && { namespace: 'kube-system', name: 'acr-configuration', uid: 'u1', resourceVersion: String(++rv), data };
    listener();
  };
  return { config, put, lines, events, stats: () => ({ invalid, changes }) };
}

describe('CredentialHelperConfig', () => {
  it('acts on the ConfigMap while it exists, and says once which fields it does not act on', () => {
    const t = setup();
    expect(t.config.current()).toBeUndefined();
    t.put({ 'service-account': 'default', 'watch-namespace': 'all', 'notify-email': 'ops@example.com', 'acr-registry-info': '- instanceId: cri-demo0000000001' });
    expect(t.config.current()?.covers('team-a', 'default')).toBe(true);
    expect(t.config.current()?.covers('kube-system', 'default')).toBe(false);
    const notices = () => t.lines.filter((l) => l.level === 'warn' && l.msg.includes('accepted but not acted on'));
    expect(notices()).toHaveLength(1);
    expect(notices()[0]!.msg).toContain('notify-email (no mail is sent');
    // Another version with the same unhonoured fields: no second notice.
    t.put({ 'service-account': '*', 'notify-email': 'ops@example.com' });
    expect(t.config.current()?.covers('default', 'builder')).toBe(true);
    expect(notices()).toHaveLength(1);
    expect(t.stats().changes).toBe(2);
    t.put(undefined);
    expect(t.config.current()).toBeUndefined();
    expect(t.stats().changes).toBe(3);
  });

  it('a bad version: error log, Warning Event on the ConfigMap, metric; the previous version stays in force', () => {
    const t = setup();
    t.put({ 'service-account': 'default' });
    const before = t.config.current();
    t.put({ 'expiring-threshold': 'soon' });
    expect(t.config.current()).toBe(before);
    expect(t.stats().invalid).toBe(1);
    expect(t.events).toEqual([
      'kube-system/acr-configuration Warning InvalidConfiguration: acr-pull-webhook cannot use this ConfigMap: kube-system/acr-configuration: expiring-threshold: expected a duration such as 15m or 1h, got "soon"; the previous version stays in force',
    ]);
    expect(t.lines.find((l) => l.level === 'error')?.msg).toBe('credential helper ConfigMap rejected; keeping the previous version');
  });

  it('expiring-threshold is exposed for the refresh threshold', () => {
    const t = setup();
    t.put({ 'expiring-threshold': '40m' });
    expect(t.config.current()?.expiringThresholdMs).toBe(40 * 60_000);
  });
});

describe('ServiceAccounts in the cache', () => {
  it('keep only names, version, k8s.aliyun.com/ annotations and imagePullSecrets', () => {
    const sa = toServiceAccountInfo({
      metadata: {
        name: 'builder',
        namespace: 'team-a',
        resourceVersion: '7',
        uid: 'u',
        labels: { a: 'b' },
        annotations: { 'k8s.aliyun.com/acr-service-arns': 'acs:ram::1:role/r', 'kubectl.kubernetes.io/last-applied-configuration': '{"big":"..."}' },
        managedFields: [{ manager: 'kubectl' }],
      },
      secrets: [{ name: 'token' }],
      imagePullSecrets: [{ name: 'my-own' }, {}],
    });
    expect(sa).toEqual({ namespace: 'team-a', name: 'builder', resourceVersion: '7', uid: 'u', vendorAnnotations: { 'k8s.aliyun.com/acr-service-arns': 'acs:ram::1:role/r' }, imagePullSecrets: ['my-own', ''] });
    expect(toServiceAccountInfo({ metadata: { name: 'x' } })).toBeUndefined();
    expect(toServiceAccountInfo({ metadata: { name: 'x', namespace: 'y' } })).toEqual({ namespace: 'y', name: 'x' });
  });

  it('their references count as use, so the collector never deletes a Secret a ServiceAccount lists', async () => {
    const usage = withServiceAccountReferences(
      { referenced: async () => new Set(['team-a/from-pod']) },
      { list: () => [{ namespace: 'team-a', imagePullSecrets: ['acr-pull-1', ''] }, { namespace: 'team-b', imagePullSecrets: ['acr-pull-2'] }, { namespace: 'team-c' }] },
    );
    expect([...(await usage.referenced())].sort()).toEqual(['team-a/acr-pull-1', 'team-a/from-pod', 'team-b/acr-pull-2']);
    expect([...(await usage.referenced(['team-b']))].sort()).toEqual(['team-a/from-pod', 'team-b/acr-pull-2']);
  });
});

describe('the runtime with the helper\'s ConfigMap', () => {
  it('renews at the larger of credentials.refreshThreshold and expiring-threshold, in the Secret manager and the token caches alike', async () => {
    const { createRuntime } = await import('../../src/runtime.js');
    const { parseConfig } = await import('../../src/config/config.js');
    const { MemorySecretStore } = await import('../../src/pull-secrets/memory-store.js');
    const { AlwaysLeader } = await import('../../src/pull-secrets/leadership.js');
    let cm: ConfigMapData | undefined;
    const listeners: Array<() => void> = [];
    const put = (data: Record<string, string>) => {
      cm = { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: String(Math.random()), data };
      for (const l of listeners) l();
    };
    const { Metrics } = await import('../../src/metrics.js');
    const metrics = new Metrics({ defaultMetrics: false });
    const saEvents: string[] = [];
    const runtime = createRuntime({
      metrics,
      config: parseConfig({ credentials: { refreshThreshold: '20m' } }, { ownNamespace: 'acr-pull-webhook', regionFromEnv: 'cn-hangzhou' }),
      identity: { source: 'test', credentials: async () => ({ accessKeyId: 'a', accessKeySecret: 'b' }) },
      endpoints: { sts: 'http://127.0.0.1:9', cr: () => 'http://127.0.0.1:9' },
      ownNamespace: 'acr-pull-webhook',
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      cluster: {
        store: new MemorySecretStore(),
        leader: new AlwaysLeader(),
        usage: { referenced: async () => new Set<string>() },
        namespaces: { name: 'namespaces', labels: () => ({}), start: async () => {}, stop: async () => {}, synced: () => true },
        serviceAccounts: {
          list: () => [],
          get: () => undefined,
          synced: () => true,
          addPullSecrets: async () => {},
          recordEvent: async (sa, type, reason, message) => {
            saEvents.push(`${sa.namespace}/${sa.name} ${type} ${reason}: ${message}`);
          },
          start: async () => {},
          stop: async () => {},
          onEvent: () => {},
        },
        helperConfigMap: {
          location: 'kube-system/acr-configuration',
          current: () => cm,
          onChange: (l) => listeners.push(l),
          synced: () => true,
          start: async () => {},
          stop: async () => {},
          recordEvent: async () => {},
        },
      },
    });
    expect(runtime.manager.refreshThresholdMs).toBe(20 * 60_000);
    put({ 'expiring-threshold': '40m' });
    expect(runtime.credentialHelper()?.expiringThresholdMs).toBe(40 * 60_000);
    expect(runtime.manager.refreshThresholdMs).toBe(40 * 60_000);
    put({ 'expiring-threshold': '5m' });
    expect(runtime.manager.refreshThresholdMs).toBe(20 * 60_000);
    // A helper Secret that was not ready at admission: a Warning Event on the ServiceAccount and the metric.
    runtime.reportHelperFailure({ namespace: 'team-a', serviceAccount: 'builder', secret: 'acr-pull-0123', error: 'Throttling.User' });
    expect(saEvents).toEqual([
      'team-a/builder Warning PullSecretNotReady: acr-pull-webhook (acr-configuration) could not prepare the pull Secret acr-pull-0123 at admission: Throttling.User; the reference is in place and the webhook keeps trying',
    ]);
    expect(await metrics.registry.getSingleMetricAsString('acr_webhook_credential_helper_failures_total')).toContain('acr_webhook_credential_helper_failures_total{stage="secret"} 1');
    expect(runtime.ready()).toBe(false); // the Secret cache is not filled yet
    runtime.start();
    await runtime.caches.whenSynced();
    expect(runtime.ready()).toBe(true);
    await runtime.stop();
  });
});

const API_NOTICE = 'acr-api-version "2099-01-01" (the webhook calls Enterprise Edition 2018-12-01 and Personal Edition 2016-06-07)';
const MAIL_NOTICE = 'notify-email (no mail is sent: failures are Warning Events on the ServiceAccount or Secret, and the metric acr_webhook_credential_helper_failures_total)';

describe('CredentialHelperConfig, what it says and when it reads', () => {
  it('logs each version read, the unhonoured fields joined, and the removal', () => {
    const t = setup();
    t.put({ 'service-account': 'default', 'watch-namespace': 'team-a', 'notify-email': 'ops@example.com', 'acr-api-version': '2099-01-01' });
    t.put(undefined);
    expect(t.lines).toEqual([
      {
        level: 'info',
        msg: 'credential helper ConfigMap read: acting as aliyun-acr-credential-helper',
        obj: { configMap: 'kube-system/acr-configuration', expiringThresholdMs: 900000, namespaces: ['team-a'], registries: 1, secretsPerNamespace: 1, serviceAccounts: ['default'] },
      },
      {
        level: 'warn',
        msg: `credential helper ConfigMap: accepted but not acted on: ${API_NOTICE}; ${MAIL_NOTICE}`,
        obj: { configMap: 'kube-system/acr-configuration', fields: [API_NOTICE, MAIL_NOTICE] },
      },
      { level: 'info', msg: 'credential helper ConfigMap removed: ServiceAccounts are no longer given pull Secrets', obj: { configMap: 'kube-system/acr-configuration' } },
    ]);
  });

  it('a bad first version: nothing in force, said so; its removal is not announced as a helper going away', () => {
    const t = setup();
    t.put({ 'expiring-threshold': 'soon' });
    expect(t.config.current()).toBeUndefined();
    const bad = 'kube-system/acr-configuration: expiring-threshold: expected a duration such as 15m or 1h, got "soon"';
    expect(t.events).toEqual([`kube-system/acr-configuration Warning InvalidConfiguration: acr-pull-webhook cannot use this ConfigMap: ${bad}`]);
    t.put(undefined);
    expect(t.lines).toEqual([
      { level: 'error', msg: 'credential helper ConfigMap rejected; ServiceAccounts are not given pull Secrets until it is fixed', obj: { configMap: 'kube-system/acr-configuration', error: bad } },
    ]);
    expect(t.stats()).toEqual({ invalid: 1, changes: 1 });
  });

  it('reads a version once: by uid and resourceVersion, or by its data when it has no resourceVersion', () => {
    let cm: ConfigMapData | undefined;
    let changes = 0;
    const config = new CredentialHelperConfig({
      source: { current: () => cm, onChange: () => {} },
      location: 'kube-system/acr-configuration',
      defaultRegion: () => 'cn-hangzhou',
      isExcluded: () => false,
      onChange: () => changes++,
    });
    cm = { namespace: 'kube-system', name: 'acr-configuration', uid: 'u1', resourceVersion: '5', data: { 'service-account': 'a' } };
    config.reload();
    config.reload();
    expect(changes).toBe(1);
    // Deleted and created again under the same resourceVersion: a new uid is a new version.
    cm = { namespace: 'kube-system', name: 'acr-configuration', uid: 'u2', resourceVersion: '5', data: { 'service-account': 'b' } };
    config.reload();
    expect(changes).toBe(2);
    expect(config.current()?.covers('default', 'b')).toBe(true);
    // Without uid and resourceVersion, the data tells versions apart.
    cm = { namespace: 'kube-system', name: 'acr-configuration', data: { 'service-account': 'c' } };
    config.reload();
    cm = { namespace: 'kube-system', name: 'acr-configuration', data: { 'service-account': 'd' } };
    config.reload();
    config.reload();
    expect(changes).toBe(4);
    expect(config.current()?.covers('default', 'd')).toBe(true);
  });

  it('works without any of the optional hooks (logger, Events, metric, change listener)', () => {
    let cm: ConfigMapData | undefined;
    const config = new CredentialHelperConfig({
      source: { current: () => cm, onChange: () => {} },
      location: 'kube-system/acr-configuration',
      defaultRegion: () => 'cn-hangzhou',
      isExcluded: () => false,
    });
    cm = { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '1', data: { 'service-account': 'a' } };
    expect(() => config.reload()).not.toThrow();
    expect(config.current()?.covers('default', 'a')).toBe(true);
    cm = { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '2', data: { 'expiring-threshold': 'soon' } };
    expect(() => config.reload()).not.toThrow();
    expect(config.current()?.covers('default', 'a')).toBe(true);
    cm = undefined;
    expect(() => config.reload()).not.toThrow();
    expect(config.current()).toBeUndefined();
  });

  it('without a change listener, a good version is read without error', () => {
    const cm: ConfigMapData = { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '1', data: { 'service-account': 'a' } };
    const levels: string[] = [];
    const log = (level: string) => () => void levels.push(level);
    const config = new CredentialHelperConfig({
      source: { current: () => cm, onChange: () => {} },
      location: 'kube-system/acr-configuration',
      defaultRegion: () => 'cn-hangzhou',
      isExcluded: () => false,
      logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
      onInvalid: () => levels.push('invalid'),
    });
    config.reload();
    expect(levels).toEqual(['info']);
  });
});
