import type { CoreV1Api } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventRecorder } from '../../src/kube/events.js';
import { recordingLogger } from '../support/recording-logger.js';
import { T0 } from './support/fixtures.js';


/** A CoreV1Api that only records createNamespacedEvent calls, or fails them with `fail`. */
function fakeCoreApi(fail?: unknown): { api: CoreV1Api; bodies: any[]; namespaces: string[] } {
  const bodies: any[] = [];
  const namespaces: string[] = [];
  const api = {
    createNamespacedEvent: async (req: { namespace: string; body: unknown }) => {
      if (fail) throw fail;
      namespaces.push(req.namespace);
      bodies.push(req.body);
      return req.body;
    },
  } as unknown as CoreV1Api;
  return { api, bodies, namespaces };
}

describe('EventRecorder', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('posts a v1 Event naming the object (uid and resourceVersion when known) in its namespace', async () => {
    const { api, bodies, namespaces } = fakeCoreApi();
    const rec = new EventRecorder(api, { component: 'acr-pull-webhook', instance: 'pod-1' });
    await rec.record({ kind: 'Secret', namespace: 'apps', name: 'acr-pull-x', uid: 'u-1', resourceVersion: '42' }, 'Warning', 'RefreshFailed', 'denied');
    expect(namespaces).toEqual(['apps']);
    const { metadata, ...rest } = bodies[0];
    expect(metadata.namespace).toBe('apps');
    expect(metadata.name).toMatch(/^acr-pull-x\.1941f297c00[0-9a-f]{8}$/);
    expect(rest).toStrictEqual({
      apiVersion: 'v1',
      kind: 'Event',
      involvedObject: { apiVersion: 'v1', kind: 'Secret', namespace: 'apps', name: 'acr-pull-x', uid: 'u-1', resourceVersion: '42' },
      type: 'Warning',
      reason: 'RefreshFailed',
      message: 'denied',
      source: { component: 'acr-pull-webhook', host: 'pod-1' },
      reportingComponent: 'acr-pull-webhook',
      reportingInstance: 'pod-1',
      firstTimestamp: new Date(T0),
      lastTimestamp: new Date(T0),
      count: 1,
    });
  });

  it('an object not yet created (no uid, no resourceVersion) is named without them', async () => {
    const { api, bodies } = fakeCoreApi();
    await new EventRecorder(api, { instance: 'pod-1' }).record({ kind: 'ServiceAccount', namespace: 'apps', name: 'sa' }, 'Normal', 'Synced', 'ok');
    expect(bodies[0].involvedObject).toStrictEqual({ apiVersion: 'v1', kind: 'ServiceAccount', namespace: 'apps', name: 'sa' });
  });

  it('cuts the Event name to the first 200 characters of the object name and the message to 1024', async () => {
    const { api, bodies } = fakeCoreApi();
    const name = 'a'.repeat(200) + 'b'.repeat(53);
    await new EventRecorder(api, { instance: 'pod-1' }).record({ kind: 'Secret', namespace: 'apps', name }, 'Warning', 'R', 'm'.repeat(1024) + 'TAIL');
    expect(bodies[0].metadata.name).toMatch(/^a{200}\.1941f297c00[0-9a-f]{8}$/);
    expect(bodies[0].message).toBe('m'.repeat(1024));
    expect(bodies[0].involvedObject.name).toBe(name);
  });

  it('a failed post is logged at debug with what it was about, and does not reject', async () => {
    const fail = Object.assign(new Error('forbidden'), { code: 403 });
    const { api } = fakeCoreApi(fail);
    const { logger, lines: logged } = recordingLogger();
    await expect(
      new EventRecorder(api, { instance: 'pod-1', logger }).record({ kind: 'Secret', namespace: 'apps', name: 's1' }, 'Warning', 'RefreshFailed', 'x'),
    ).resolves.toBeUndefined();
    expect(logged).toEqual([
      ['debug', { kind: 'Secret', namespace: 'apps', name: 's1', reason: 'RefreshFailed', err: 'Error HTTP 403' }, 'recording event failed'],
    ]);
  });
});
