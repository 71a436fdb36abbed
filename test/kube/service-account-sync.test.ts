// The leader's ServiceAccount loop: what aliyun-acr-credential-helper does (patch the ServiceAccounts its
// ConfigMap names, keep their Secret fresh), plus repair when someone edits one, with Events and a metric on failure.
import { describe, expect, it } from 'vitest';
import { credentialHelper, helperBindings, type CredentialHelper } from '../../src/acr/credential-helper.js';
import type { Leadership } from '../../src/pull-secrets/leadership.js';
import { PullSecretManager } from '../../src/pull-secrets/manager.js';
import { MemorySecretStore } from '../../src/pull-secrets/memory-store.js';
import { HELPER_EVENT_REASON, ServiceAccountSync, type ServiceAccountInfo, type ServiceAccountWriter } from '../../src/pull-secrets/service-account-sync.js';
import type { EventType } from '../../src/pull-secrets/store.js';
import { keyOf } from '../../src/pull-secrets/util.js';
import { denial, FakeClock, FakeTokens, HOUR, MIN } from './support/fixtures.js';

/** ServiceAccounts in memory, with the API server's rule: a patch of a stale version is refused. */
class MemoryAccounts implements ServiceAccountWriter {
  readonly items = new Map<string, ServiceAccountInfo>();
  readonly events: { name: string; type: EventType; reason: string; message: string }[] = [];
  patches = 0;
  failPatches = 0;
  private rv = 1;

  put(sa: Omit<ServiceAccountInfo, 'resourceVersion'>): ServiceAccountInfo {
    const stored = { ...sa, resourceVersion: String(++this.rv) };
    this.items.set(keyOf(sa.namespace, sa.name), stored);
    return stored;
  }
  list() {
    return this.items.values();
  }
  get(namespace: string, name: string) {
    return this.items.get(keyOf(namespace, name));
  }
  synced() {
    return true;
  }
  async addPullSecrets(sa: ServiceAccountInfo, names: readonly string[]) {
    this.patches++;
    if (this.failPatches > 0) {
      this.failPatches--;
      // As client-node's ApiException carries it.
      throw Object.assign(new Error('HTTP-Code: 403'), { code: 403, body: JSON.stringify({ kind: 'Status', reason: 'Forbidden' }) });
    }
    const cur = this.get(sa.namespace, sa.name);
    if (!cur || cur.resourceVersion !== sa.resourceVersion) throw new Error('the object has been modified');
    this.put({ ...cur, imagePullSecrets: [...(cur.imagePullSecrets ?? []), ...names] });
  }
  async recordEvent(sa: { name: string }, type: EventType, reason: string, message: string) {
    this.events.push({ name: sa.name, type, reason, message });
  }
}

const REGISTRIES = [{ edition: 'enterprise' as const, instanceId: 'cri-demo0000000001', region: 'cn-hangzhou', domains: ['registry.example.com'], chain: {} }];

function world(opts: { serviceAccounts?: '*' | string[]; leader?: Leadership } = {}) {
  const clock = new FakeClock();
  const store = new MemorySecretStore({ now: clock.now });
  const tokens = new FakeTokens(clock);
  const manager = new PullSecretManager({ store, tokens, now: clock.now });
  const accounts = new MemoryAccounts();
  let helper: CredentialHelper | undefined = credentialHelper(
    { serviceAccounts: opts.serviceAccounts ?? ['default'], namespaces: 'all' },
    helperBindings(REGISTRIES),
    15 * MIN,
    (ns) => ns === 'kube-system',
  );
  const failures: string[] = [];
  const sync = new ServiceAccountSync({
    accounts,
    manager,
    leader: opts.leader ?? { isLeader: () => true },
    coverage: () => helper,
    now: clock.now,
    backoffInitialMs: 10_000,
    onFailure: (stage) => failures.push(stage),
  });
  return { clock, store, tokens, manager, accounts, sync, failures, setHelper: (h: CredentialHelper | undefined) => (helper = h), helper: () => helper! };
}

describe('ServiceAccountSync (the credential helper, from the leader)', () => {
  it('gives every covered ServiceAccount that existed before the Secret, creating it first; leaves the others alone', async () => {
    const w = world();
    await w.store.start();
    w.accounts.put({ namespace: 'team-a', name: 'default' });
    w.accounts.put({ namespace: 'team-b', name: 'default', imagePullSecrets: ['my-own'] });
    w.accounts.put({ namespace: 'team-a', name: 'builder' });
    w.accounts.put({ namespace: 'kube-system', name: 'default' });
    const results = await w.sync.runOnce();
    expect(results.map((r) => `${r.namespace}/${r.name}:${r.outcome}`).sort()).toEqual(['team-a/default:patched', 'team-b/default:patched']);
    const name = w.helper().specs('team-a')[0]!.name;
    expect(w.accounts.get('team-a', 'default')!.imagePullSecrets).toEqual([name]);
    expect(w.accounts.get('team-b', 'default')!.imagePullSecrets).toEqual(['my-own', name]);
    expect(w.accounts.get('team-a', 'builder')!.imagePullSecrets).toBeUndefined();
    expect(w.accounts.get('kube-system', 'default')!.imagePullSecrets).toBeUndefined();
    expect(w.store.get('team-a', name)).toBeDefined();
    expect(w.store.get('team-b', name)).toBeDefined();
    expect(w.tokens.calls).toBe(2);

    // Everything in place: a pass makes no call and no write.
    const patches = w.accounts.patches;
    expect(await w.sync.runOnce()).toEqual([]);
    expect(w.accounts.patches).toBe(patches);
    expect(w.tokens.calls).toBe(2);
  });

  it('repairs a ServiceAccount someone edited (its entry removed), and renews a Secret before expiring-threshold', async () => {
    const w = world();
    await w.store.start();
    w.accounts.put({ namespace: 'team-a', name: 'default' });
    await w.sync.runOnce();
    const name = w.helper().specs('team-a')[0]!.name;
    w.accounts.put({ ...w.accounts.get('team-a', 'default')!, imagePullSecrets: ['other'] });
    expect((await w.sync.runOnce()).map((r) => r.outcome)).toEqual(['patched']);
    expect(w.accounts.get('team-a', 'default')!.imagePullSecrets).toEqual(['other', name]);

    // Tokens last an hour; 46 minutes later they are within the 15-minute threshold.
    const before = w.tokens.calls;
    w.clock.advance(46 * MIN);
    await w.sync.runOnce();
    expect(w.tokens.calls).toBe(before + 1);
    expect(w.manager.isFresh(w.store.get('team-a', name)!, w.helper().specs('team-a')[0]!)).toBe(true);
  });

  it('"*": every ServiceAccount, and a new one at the next pass', async () => {
    const w = world({ serviceAccounts: '*' });
    await w.store.start();
    w.accounts.put({ namespace: 'team-a', name: 'builder' });
    await w.sync.runOnce();
    w.accounts.put({ namespace: 'team-a', name: 'deployer' });
    await w.sync.runOnce();
    const name = w.helper().specs('team-a')[0]!.name;
    expect([...w.accounts.list()].map((a) => a.imagePullSecrets)).toEqual([[name], [name]]);
    expect(w.tokens.calls).toBe(1); // one Secret per namespace
  });

  it('a failure: Warning Event on the ServiceAccount naming the step, a metric, backoff; then success', async () => {
    const w = world();
    await w.store.start();
    w.accounts.put({ namespace: 'team-a', name: 'default' });
    w.tokens.failWith = denial('failed getting a registry token for instance cri-demo0000000001: NoPermission');
    const [r] = await w.sync.runOnce();
    expect(r).toMatchObject({ outcome: 'failed', stage: 'secret' });
    expect(w.failures).toEqual(['secret']);
    expect(w.accounts.events).toEqual([
      {
        name: 'default',
        type: 'Warning',
        reason: HELPER_EVENT_REASON,
        message: expect.stringMatching(/^acr-pull-webhook \(acr-configuration\) could not prepare the pull Secret acr-pull-[0-9a-f]{20} \(attempt 1\): .*NoPermission; retrying in 10s$/),
      },
    ]);
    // No reference to a Secret that does not exist.
    expect(w.accounts.get('team-a', 'default')!.imagePullSecrets).toBeUndefined();
    // Backing off: the next pass does not try again yet.
    w.tokens.failWith = undefined;
    expect(await w.sync.runOnce()).toEqual([]);
    w.clock.advance(11_000);
    expect((await w.sync.runOnce()).map((x) => x.outcome)).toEqual(['patched']);

    w.accounts.put({ namespace: 'team-b', name: 'default' });
    w.accounts.failPatches = 1;
    expect((await w.sync.runOnce()).map((x) => `${x.outcome}:${x.stage}`)).toEqual(['failed:patch']);
    expect(w.failures).toEqual(['secret', 'patch']);
    expect(w.accounts.events.at(-1)!.message).toMatch(/could not add its pull Secrets to imagePullSecrets \(attempt 1\): Error HTTP 403 Forbidden; retrying in 10s$/);
  });

  it('does nothing unless leader, nor without the ConfigMap', async () => {
    let leading = false;
    const w = world({ leader: { isLeader: () => leading } });
    await w.store.start();
    w.accounts.put({ namespace: 'team-a', name: 'default' });
    expect(await w.sync.runOnce()).toEqual([]);
    const helper = w.helper();
    w.setHelper(undefined);
    leading = true;
    expect(await w.sync.runOnce()).toEqual([]);
    expect(w.accounts.patches).toBe(0);
    w.setHelper(helper);
    expect(await w.sync.runOnce()).toHaveLength(1);
  });

  it('poke(): a change is looked at within the debounce, not the interval', async () => {
    const w = world();
    await w.store.start();
    const sync = new ServiceAccountSync({
      accounts: w.accounts,
      manager: w.manager,
      leader: { isLeader: () => true },
      coverage: () => w.helper(),
      intervalMs: HOUR,
      debounceMs: 20,
    });
    sync.start();
    try {
      w.accounts.put({ namespace: 'team-a', name: 'default' });
      sync.poke();
      const until = Date.now() + 2000;
      while (!w.accounts.get('team-a', 'default')!.imagePullSecrets && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      expect(w.accounts.get('team-a', 'default')!.imagePullSecrets).toHaveLength(1);
    } finally {
      await sync.stop();
    }
  });
});
