// The leader's loop that keeps the generated matchCondition in the webhook's MutatingWebhookConfiguration: when it
// reads, what it patches, how it backs off after failures and what it logs. The API is a stub behind makeApiClient
// and the clock is vitest's fake one, so every step is a direct `await tick()`; the real API server's side of the
// patch is proven in `npm run e2e` (test/e2e/webhook.test.ts).
import type { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SEND_CONDITION, type MatchCondition } from '../../src/admission/match-conditions.js';
import { conditionPatch, WebhookConditionsSync, type Desired, type WebhookConditionsOptions } from '../../src/kube/webhook-conditions.js';

const DEFAULT = 'default.acr-pull-webhook.k8s.aliyun.com';
const T = Date.parse('2025-01-01T00:00:00Z');
const STATIC: MatchCondition = { name: 'not-kube-system', expression: 'true' };

type Mwc = { metadata?: { resourceVersion?: string }; webhooks?: { name?: string; matchConditions?: MatchCondition[] }[] };

function setup(over: Partial<WebhookConditionsOptions> & { noState?: boolean } = {}) {
  const s = {
    mwc: { metadata: { resourceVersion: '7' }, webhooks: [{ name: 'annotated.acr-pull-webhook.k8s.aliyun.com' }, { name: DEFAULT, matchConditions: [STATIC] }] } as Mwc,
    reads: 0,
    patches: [] as Record<string, unknown>[],
    fail: undefined as Error | undefined,
    leader: true,
    desired: { name: SEND_CONDITION, expression: 'expr-1' } as Desired,
    states: [] as string[],
    lines: [] as { level: string; obj: Record<string, unknown>; msg: string }[],
    release: undefined as (() => void) | undefined,
    hold: false,
  };
  const api = {
    readMutatingWebhookConfiguration: async (p: { name: string }) => {
      expect(p.name).toBe('acr-pull-webhook');
      s.reads++;
      if (s.hold) await new Promise<void>((r) => (s.release = r));
      if (s.fail) throw s.fail;
      return structuredClone(s.mwc);
    },
    patchMutatingWebhookConfiguration: async (p: Record<string, unknown>) => {
      s.patches.push(p);
      return {};
    },
  };
  const log = (level: string) => (obj: object, msg?: string) => s.lines.push({ level, obj: obj as Record<string, unknown>, msg: msg ?? '' });
  const sync = new WebhookConditionsSync({
    kubeConfig: { makeApiClient: () => api } as unknown as KubeConfig,
    configuration: 'acr-pull-webhook',
    webhook: DEFAULT,
    leader: { isLeader: () => s.leader },
    desired: () => s.desired,
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    intervalMs: 100,
    recheckMs: 1000,
    ...(over.noState ? {} : { onState: (st) => s.states.push(st) }),
    ...over,
  });
  const at = (ms: number) => vi.setSystemTime(T + ms);
  return { s, sync, at };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T);
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('conditionPatch, with the entries at index 0', () => {
  it('finds the default webhook and its generated condition when they come first', () => {
    const d = { name: SEND_CONDITION, expression: 'x' };
    expect(conditionPatch([{ name: DEFAULT, matchConditions: [d, STATIC] }], DEFAULT, d)).toEqual([]);
    expect(conditionPatch([{ name: DEFAULT, matchConditions: [d, STATIC] }], DEFAULT, undefined)).toEqual([
      { op: 'test', path: '/webhooks/0/name', value: DEFAULT },
      { op: 'test', path: '/webhooks/0/matchConditions/0/name', value: SEND_CONDITION },
      { op: 'remove', path: '/webhooks/0/matchConditions/0' },
    ]);
    expect(conditionPatch([{ name: DEFAULT, matchConditions: [{ ...d, expression: 'old' }] }], DEFAULT, d)).toEqual([
      { op: 'test', path: '/webhooks/0/name', value: DEFAULT },
      { op: 'test', path: '/webhooks/0/matchConditions/0/name', value: SEND_CONDITION },
      { op: 'replace', path: '/webhooks/0/matchConditions/0/expression', value: 'x' },
    ]);
  });
});

describe('WebhookConditionsSync', () => {
  it('writes the condition with a resourceVersion guard, logs it, then leaves it until the recheck interval', async () => {
    const { s, sync, at } = setup();
    await sync.tick();
    expect(s.reads).toBe(1);
    expect(s.patches).toEqual([
      {
        name: 'acr-pull-webhook',
        fieldManager: 'acr-pull-webhook',
        body: [
          { op: 'test', path: '/metadata/resourceVersion', value: '7' },
          { op: 'test', path: '/webhooks/1/name', value: DEFAULT },
          { op: 'add', path: '/webhooks/1/matchConditions/-', value: { name: SEND_CONDITION, expression: 'expr-1' } },
        ],
      },
    ]);
    expect(s.lines).toEqual([
      {
        level: 'info',
        obj: { configuration: 'acr-pull-webhook', webhook: DEFAULT, condition: SEND_CONDITION, bytes: 6 },
        msg: 'matchConditions updated: objects that need nothing are no longer sent',
      },
    ]);
    expect(s.states).toEqual(['condition']);
    // The same desired condition: not read again before the recheck interval, read again exactly at it.
    s.mwc.webhooks![1]!.matchConditions!.push({ name: SEND_CONDITION, expression: 'expr-1' });
    at(100);
    await sync.tick();
    at(999);
    await sync.tick();
    expect(s.reads).toBe(1);
    at(1000);
    await sync.tick();
    expect(s.reads).toBe(2);
    expect(s.patches).toHaveLength(1); // in place: nothing to patch
    expect(s.states).toEqual(['condition', 'condition']);
  });

  it('a changed condition is written at once, however soon; removing it says every object is sent', async () => {
    const { s, sync, at } = setup();
    s.mwc = { webhooks: [{ name: DEFAULT }] }; // no metadata, no resourceVersion: no guard on it
    await sync.tick();
    expect(s.patches[0]!.body).toEqual([
      { op: 'test', path: '/webhooks/0/name', value: DEFAULT },
      { op: 'add', path: '/webhooks/0/matchConditions', value: [{ name: SEND_CONDITION, expression: 'expr-1' }] },
    ]);
    s.mwc = { metadata: { resourceVersion: '8' }, webhooks: [{ name: DEFAULT, matchConditions: [{ name: SEND_CONDITION, expression: 'expr-1' }] }] };
    s.desired = { name: SEND_CONDITION, expression: 'expr-two' };
    at(50);
    await sync.tick();
    expect(s.reads).toBe(2);
    expect(s.patches[1]!.body).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '8' },
      { op: 'test', path: '/webhooks/0/name', value: DEFAULT },
      { op: 'test', path: '/webhooks/0/matchConditions/0/name', value: SEND_CONDITION },
      { op: 'replace', path: '/webhooks/0/matchConditions/0/expression', value: 'expr-two' },
    ]);
    s.desired = undefined;
    at(60);
    await sync.tick();
    expect(s.reads).toBe(3);
    expect(s.patches[2]!.body).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '8' },
      { op: 'test', path: '/webhooks/0/name', value: DEFAULT },
      { op: 'test', path: '/webhooks/0/matchConditions/0/name', value: SEND_CONDITION },
      { op: 'remove', path: '/webhooks/0/matchConditions/0' },
    ]);
    expect(s.lines.at(-1)).toEqual({
      level: 'info',
      obj: { configuration: 'acr-pull-webhook', webhook: DEFAULT, condition: 'none', bytes: 0 },
      msg: 'matchConditions: generated condition removed, every object without ACR annotations is sent',
    });
    expect(s.states).toEqual(['condition', 'condition', 'send-all']);
  });

  it('does nothing while not the leader, while the inputs are unknown, or while a pass is running', async () => {
    const { s, sync } = setup();
    s.leader = false;
    await sync.tick();
    s.leader = true;
    s.desired = 'unknown';
    await sync.tick();
    expect(s.reads).toBe(0);
    s.desired = undefined;
    s.hold = true;
    const first = sync.tick();
    expect(s.release).toBeDefined();
    await sync.tick(); // the first is still reading
    expect(s.reads).toBe(1);
    s.release!();
    await first;
    expect(s.states).toEqual(['send-all']);
    expect(s.patches).toEqual([]);
  });

  it('without the default entry (annotated-only install): says so once, patches nothing, reports no-webhook', async () => {
    const { s, sync, at } = setup();
    s.mwc = { metadata: { resourceVersion: '7' }, webhooks: [{ name: 'annotated.acr-pull-webhook.k8s.aliyun.com' }] };
    await sync.tick();
    expect(s.lines).toHaveLength(1); // said at the first check
    at(500);
    await sync.tick();
    expect(s.reads).toBe(1);
    at(1000);
    await sync.tick();
    expect(s.reads).toBe(2);
    expect(s.patches).toEqual([]);
    expect(s.states).toEqual(['no-webhook', 'no-webhook']);
    expect(s.lines).toEqual([
      { level: 'info', obj: { configuration: 'acr-pull-webhook', webhook: DEFAULT }, msg: 'no such webhook entry: its matchConditions are not managed' },
    ]);
  });

  it('works without an onState hook (no-webhook, condition and send-all alike)', async () => {
    const { s, sync, at } = setup({ noState: true });
    await sync.tick();
    s.desired = undefined;
    s.mwc = { webhooks: [{ name: 'other' }] };
    at(1000);
    await sync.tick();
    s.mwc = { webhooks: [{ name: DEFAULT }] };
    at(2000);
    await sync.tick();
    expect(s.reads).toBe(3);
    expect(s.lines.filter((l) => l.level !== 'info')).toEqual([]);
  });

  it('after failures, backs off doubling from the interval up to the recheck interval; warns at the 1st and every 20th', async () => {
    const { s, sync, at } = setup();
    s.fail = Object.assign(new Error('injected'), { code: 'ECONNREFUSED' });
    await sync.tick();
    expect(s.reads).toBe(1);
    expect(s.lines).toEqual([
      {
        level: 'warn',
        obj: { configuration: 'acr-pull-webhook', err: 'Error ECONNREFUSED', failures: 1, check: 'RBAC: get and patch on mutatingwebhookconfigurations/acr-pull-webhook' },
        msg: 'matchConditions could not be updated',
      },
    ]);
    // One failure: 200 ms (interval 100 × 2) before the next attempt.
    await sync.tick();
    at(199);
    await sync.tick();
    expect(s.reads).toBe(1);
    at(200);
    await sync.tick();
    expect(s.reads).toBe(2);
    // Two failures: 400 ms.
    at(599);
    await sync.tick();
    expect(s.reads).toBe(2);
    at(600);
    await sync.tick();
    expect(s.reads).toBe(3);
    // Three failures: 800 ms.
    at(1399);
    await sync.tick();
    expect(s.reads).toBe(3);
    at(1400);
    await sync.tick();
    expect(s.reads).toBe(4);
    // Capped at the recheck interval (1000 ms): failures 5 to 21.
    let t = 1400;
    for (let n = 5; n <= 21; n++) {
      t += 1000;
      at(t - 1);
      await sync.tick();
      at(t);
      await sync.tick();
      expect(s.reads).toBe(n);
    }
    expect(s.lines.map((l) => l.obj.failures)).toEqual([1, 20]);
    // Back: written at once when its time comes, and the count starts again.
    s.fail = undefined;
    at(t + 1000);
    await sync.tick();
    expect(s.patches).toHaveLength(1);
    expect(s.states).toEqual(['condition']);
  });

  it('start() runs the pass every interval, once however often started; stop() ends it', async () => {
    const { s, sync } = setup();
    s.desired = undefined;
    sync.start();
    sync.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(s.reads).toBe(1);
    sync.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(s.reads).toBe(1);
    sync.stop(); // twice: harmless
  });

  it('start() works where a timer has no unref', () => {
    const { sync } = setup();
    const handle = {};
    vi.stubGlobal('setInterval', () => handle);
    const cleared: unknown[] = [];
    vi.stubGlobal('clearInterval', (h: unknown) => cleared.push(h));
    expect(() => sync.start()).not.toThrow();
    sync.stop();
    expect(cleared).toEqual([handle]);
  });
});
