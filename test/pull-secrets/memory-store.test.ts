// MemorySecretStore's API-server semantics, pinned with exact values: counters, resourceVersions, uids, error
// reasons, delete preconditions, the event ring and the write latency.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SecretObject } from '../../src/pull-secrets/store.js';

type StoreModule = typeof import('../../src/pull-secrets/memory-store.js');
type ErrorsModule = typeof import('../../src/pull-secrets/store.js');

let M: StoreModule;
let E: ErrorsModule;

const T0 = Date.parse('2025-01-01T00:00:00Z');

function managed(name: string, extra: Partial<SecretObject['metadata']> = {}): SecretObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: 'apps', labels: { 'app.kubernetes.io/managed-by': 'acr-pull-webhook' }, ...extra },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': 'e30=' },
  };
}

function foreign(name: string): SecretObject {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'apps' }, type: 'Opaque', data: {} };
}

beforeEach(async () => {
  vi.resetModules();
  M = await import('../../src/pull-secrets/memory-store.js');
  E = await import('../../src/pull-secrets/store.js');
});

afterEach(() => {
  vi.useRealTimers();
});

describe('MemorySecretStore', () => {
  it('numbers resourceVersions and uids from 1, keeps the uid and creation time on replace, counts writes', async () => {
    let t = T0;
    const store = new M.MemorySecretStore({ now: () => t });
    const a = await store.create(managed('a'));
    expect(a.metadata.resourceVersion).toBe('1');
    expect(a.metadata.uid).toBe('uid-1');
    expect(a.metadata.creationTimestamp).toBe('2025-01-01T00:00:00.000Z');
    t += 5000;
    const b = await store.create(managed('b'));
    expect(b.metadata.resourceVersion).toBe('2');
    expect(b.metadata.uid).toBe('uid-2');
    const a2 = await store.replace(a);
    expect(a2.metadata.resourceVersion).toBe('3');
    expect(a2.metadata.uid).toBe('uid-1');
    expect(a2.metadata.creationTimestamp).toBe('2025-01-01T00:00:00.000Z');
    expect(store.stats).toEqual({ create: 2, replace: 1, delete: 0, read: 0, conflicts: 0 });
    expect(await store.delete('apps', 'b')).toBe(true);
    expect(store.stats.delete).toBe(1);
    expect(store.writes()).toBe(4);
  });

  it('counts reads, and lists only managed Secrets while read returns any', async () => {
    const store = new M.MemorySecretStore();
    store.externalWrite(managed('a'));
    store.externalWrite(foreign('b'));
    expect(store.list().map((s) => s.metadata.name)).toEqual(['a']);
    expect(store.get('apps', 'b')).toBeUndefined();
    expect((await store.read('apps', 'b'))!.metadata.name).toBe('b');
    expect(await store.read('apps', 'c')).toBeUndefined();
    expect(store.stats.read).toBe(2);
    expect(store.writes()).toBe(0);
  });

  it('refuses a create of a taken name with AlreadyExists and counts the conflict', async () => {
    const store = new M.MemorySecretStore();
    await store.create(managed('a'));
    const err = await store.create(managed('a')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(E.ConflictError);
    expect((err as InstanceType<ErrorsModule['ConflictError']>).reason).toBe('AlreadyExists');
    expect(store.stats.conflicts).toBe(1);
    expect(store.stats.create).toBe(2);
  });

  it('replace: NotFound for a missing Secret, Conflict for a stale resourceVersion', async () => {
    const store = new M.MemorySecretStore();
    const missing = await store.replace(managed('x', { resourceVersion: '7' })).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(E.NotFoundError);
    expect(store.stats.conflicts).toBe(0);
    const a = await store.create(managed('a'));
    store.externalWrite(a); // resourceVersion 2 now
    const stale = await store.replace(a).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(E.ConflictError);
    expect((stale as InstanceType<ErrorsModule['ConflictError']>).reason).toBe('Conflict');
    expect(store.stats.conflicts).toBe(1);
    expect(store.stats.replace).toBe(2);
  });

  it('delete: false when missing, unconditional without a resourceVersion, Conflict on a stale one', async () => {
    const store = new M.MemorySecretStore();
    expect(await store.delete('apps', 'nothing')).toBe(false);
    expect(await store.delete('apps', 'nothing', '1')).toBe(false);
    await store.create(managed('a'));
    await store.create(managed('b'));
    expect(await store.delete('apps', 'a')).toBe(true);
    expect(store.get('apps', 'a')).toBeUndefined();
    const err = await store.delete('apps', 'b', '1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(E.ConflictError);
    expect((err as InstanceType<ErrorsModule['ConflictError']>).reason).toBe('Conflict');
    expect(store.stats.conflicts).toBe(1);
    expect(store.get('apps', 'b')).toBeDefined();
    expect(await store.delete('apps', 'b', '2')).toBe(true);
    expect(store.stats.delete).toBe(5);
    expect(store.list()).toEqual([]);
  });

  it('externalDelete removes without counting and says whether there was something', async () => {
    const store = new M.MemorySecretStore();
    store.externalWrite(managed('a'));
    expect(store.externalDelete('apps', 'a')).toBe(true);
    expect(store.get('apps', 'a')).toBeUndefined();
    expect(store.externalDelete('apps', 'a')).toBe(false);
    expect(store.writes()).toBe(0);
  });

  it('keeps the newest maxEvents events (1000 by default)', async () => {
    const small = new M.MemorySecretStore({ now: () => T0, maxEvents: 2 });
    const s = managed('a');
    await small.recordEvent(s, 'Normal', 'R1', 'one');
    await small.recordEvent(s, 'Normal', 'R2', 'two');
    expect(small.events.map((e) => e.reason)).toEqual(['R1', 'R2']);
    await small.recordEvent(s, 'Warning', 'R3', 'three');
    expect(small.events).toEqual([
      { namespace: 'apps', name: 'a', type: 'Normal', reason: 'R2', message: 'two', at: T0 },
      { namespace: 'apps', name: 'a', type: 'Warning', reason: 'R3', message: 'three', at: T0 },
    ]);

    const dflt = new M.MemorySecretStore({ now: () => T0 });
    for (let i = 0; i < 1001; i++) await dflt.recordEvent(s, 'Normal', `R${i}`, 'm');
    expect(dflt.events.length).toBe(1000);
    expect(dflt.events[0]!.reason).toBe('R1');
    expect(dflt.events[999]!.reason).toBe('R1000');
  });

  it('a write with no latency settles on microtasks alone; a latency holds it for exactly that long', async () => {
    vi.useFakeTimers();
    const fast = new M.MemorySecretStore({ now: () => T0 });
    let done = false;
    void fast.create(managed('a')).then(() => (done = true));
    for (let i = 0; i < 20 && !done; i++) await Promise.resolve();
    expect(done).toBe(true);

    const slow = new M.MemorySecretStore({ now: () => T0, writeLatencyMs: 50 });
    let slowDone = false;
    void slow.create(managed('a')).then(() => (slowDone = true));
    await vi.advanceTimersByTimeAsync(49);
    expect(slowDone).toBe(false);
    expect(slow.stats.create).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(slowDone).toBe(true);
    expect(slow.stats.create).toBe(1);
  });
});
