// Which pull Secrets Pods and ImageCaches reference, read over HTTP from the fake API server (and, for list shapes
// the fake server never sends, from stub clients): the namespace scope, per-namespace versus cluster-wide lists,
// ImageCache paging, odd objects, and a missing versus a forbidden ImageCache CRD.
import type { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type * as Usage from '../../src/kube/usage.js';
import { FakeApiServer } from './support/fake-apiserver.js';

let server: FakeApiServer;
let usage: typeof Usage;

beforeEach(async () => {
  // Loaded per test so that the module's constants (the ImageCache group, version, plural) count for these tests.
  vi.resetModules();
  usage = await import('../../src/kube/usage.js');
  server = new FakeApiServer();
  await server.start();
  server.pods = [
    { metadata: { name: 'p1', namespace: 'apps' }, spec: { imagePullSecrets: [{ name: 's1' }] } },
    { metadata: { name: 'p2', namespace: 'web' }, spec: { imagePullSecrets: [{ name: 's2' }] } },
    { metadata: { name: 'p3', namespace: 'other' }, spec: { imagePullSecrets: [{ name: 's3' }] } },
  ];
});

afterEach(async () => {
  await server.stop();
});

const sorted = (s: Set<string>): string[] => [...s].sort();
const podLists = () => server.requests.filter((r) => r.path.endsWith('/pods')).map((r) => r.path);

describe('KubeUsageSource: which Pods it lists', () => {
  it('with served namespaces: only those, one list each, whatever is asked', async () => {
    const src = new usage.KubeUsageSource({ kubeConfig: server.kubeConfig(), namespaces: ['apps', 'web', 'apps'] });
    expect(sorted(await src.referenced())).toEqual(['apps/s1', 'web/s2']);
    expect(podLists()).toEqual(['/api/v1/namespaces/apps/pods', '/api/v1/namespaces/web/pods']);
    server.requests.length = 0;
    expect(sorted(await src.referenced([]))).toEqual(['apps/s1', 'web/s2']);
    expect(podLists()).toEqual(['/api/v1/namespaces/apps/pods', '/api/v1/namespaces/web/pods']);
    server.requests.length = 0;
    expect(sorted(await src.referenced(['web', 'other']))).toEqual(['web/s2']);
    expect(podLists()).toEqual(['/api/v1/namespaces/web/pods']);
  });

  it('up to perNamespaceLimit namespaces: one list each; above: one cluster-wide list, filtered to them', async () => {
    const src = new usage.KubeUsageSource({ kubeConfig: server.kubeConfig(), perNamespaceLimit: 2 });
    expect(sorted(await src.referenced(['apps', 'web']))).toEqual(['apps/s1', 'web/s2']);
    expect(podLists()).toEqual(['/api/v1/namespaces/apps/pods', '/api/v1/namespaces/web/pods']);
    server.requests.length = 0;
    expect(sorted(await src.referenced(['apps', 'web', 'gone']))).toEqual(['apps/s1', 'web/s2']);
    expect(podLists()).toEqual(['/api/v1/pods']);
    server.requests.length = 0;
    expect(sorted(await src.referenced())).toEqual(['apps/s1', 'other/s3', 'web/s2']);
    expect(podLists()).toEqual(['/api/v1/pods']);
  });

  it('skips Pods without a namespace or spec, and references without a name', async () => {
    server.pods = [
      { metadata: { name: 'no-ns' }, spec: { imagePullSecrets: [{ name: 'x1' }] } },
      { spec: { imagePullSecrets: [{ name: 'x2' }] } },
      { metadata: { name: 'no-spec', namespace: 'apps' } },
      { metadata: { name: 'unnamed', namespace: 'apps' }, spec: { imagePullSecrets: [{}, { name: 's1' }] } },
    ];
    const src = new usage.KubeUsageSource({ kubeConfig: server.kubeConfig(), pageSize: 2, imageCaches: false });
    expect(sorted(await src.referenced())).toEqual(['apps/s1']);
    expect(podLists()).toEqual(['/api/v1/pods', '/api/v1/pods']);
  });
});

describe('KubeUsageSource: ImageCaches', () => {
  it('reads "namespace:name" references page by page, skipping malformed ones', async () => {
    server.pods = [];
    server.imageCaches = [
      { metadata: { name: 'ic1' }, spec: { imagePullSecrets: ['apps:a'] } },
      { metadata: { name: 'ic2' } },
      { metadata: { name: 'ic3' }, spec: { imagePullSecrets: 5 } },
      { metadata: { name: 'ic4' }, spec: { imagePullSecrets: [':x', 'y:', 'nocolon', 7, {}, 'web:b'] } },
    ];
    const src = new usage.KubeUsageSource({ kubeConfig: server.kubeConfig(), pageSize: 1 });
    expect(sorted(await src.referenced())).toEqual(['apps/a', 'web/b']);
    expect(server.count('GET', '/apis/eci.alibabacloud.com/v1/imagecaches')).toBe(4);
  });

  it('are not listed when turned off', async () => {
    server.imageCaches = [{ metadata: { name: 'ic1' }, spec: { imagePullSecrets: ['apps:a'] } }];
    const src = new usage.KubeUsageSource({ kubeConfig: server.kubeConfig(), imageCaches: false, namespaces: ['apps'] });
    expect(sorted(await src.referenced())).toEqual(['apps/s1']);
    expect(server.count('GET', '/apis/')).toBe(0);
  });

  it('a missing CRD (404) counts as none; any other failure rejects', async () => {
    const src = new usage.KubeUsageSource({ kubeConfig: server.kubeConfig(), namespaces: ['apps'] });
    expect(sorted(await src.referenced())).toEqual(['apps/s1']);
    server.imageCaches = [];
    server.forbid = (_method, path) => path.startsWith('/apis/eci.alibabacloud.com/');
    await expect(src.referenced()).rejects.toMatchObject({ code: 403 });
  });
});

describe('KubeUsageSource: lists without metadata or items', () => {
  it('end paging instead of failing', async () => {
    const calls: string[] = [];
    const core = {
      listPodForAllNamespaces: async () => {
        calls.push('pods');
        return { items: [{ metadata: { namespace: 'apps' }, spec: { imagePullSecrets: [{ name: 's1' }] } }] };
      },
    };
    const custom = {
      listClusterCustomObject: async () => {
        calls.push('imagecaches');
        return {};
      },
    };
    const kubeConfig = { makeApiClient: (api: { prototype: object }) => ('listPodForAllNamespaces' in api.prototype ? core : custom) } as unknown as KubeConfig;
    const src = new usage.KubeUsageSource({ kubeConfig });
    expect(sorted(await src.referenced())).toEqual(['apps/s1']);
    expect(calls).toEqual(['pods', 'imagecaches']);
  });
});

describe('withServiceAccountReferences', () => {
  it('adds every ServiceAccount\'s references when asked for all namespaces or an empty list, else those in the namespaces asked', async () => {
    const src = usage.withServiceAccountReferences(
      { referenced: async () => new Set(['apps/from-pod']) },
      { list: () => [{ namespace: 'apps', imagePullSecrets: ['sa1'] }, { namespace: 'web', imagePullSecrets: ['sa2'] }] },
    );
    expect(sorted(await src.referenced([]))).toEqual(['apps/from-pod', 'apps/sa1', 'web/sa2']);
    expect(sorted(await src.referenced())).toEqual(['apps/from-pod', 'apps/sa1', 'web/sa2']);
    expect(sorted(await src.referenced(['web']))).toEqual(['apps/from-pod', 'web/sa2']);
  });
});
