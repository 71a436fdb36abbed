// Shared test doubles: a controllable clock, a counting token source, specs.
import type { Binding, PullSecretSpec } from '../../../src/acr/model.js';
import { secretNameFor } from '../../../src/acr/secret-name.js';
import { DenialError, type Budget, type DockerAuths, type TokenSource } from '../../../src/pull-secrets/types.js';
import type { UsageSource } from '../../../src/pull-secrets/collector.js';

export const T0 = Date.parse('2025-01-01T00:00:00Z');
export const MIN = 60_000;
export const HOUR = 60 * MIN;

export class FakeClock {
  constructor(public t = T0) {}
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export const PASSWORD_MARK = 'S3cr3t-';

/** Hands out tokens valid for `ttlMs` from the clock's now; counts calls; can be told to fail or to wait. */
export class FakeTokens implements TokenSource {
  calls = 0;
  failWith: Error | undefined;
  delayMs = 0;
  /** Resolves pending calls only when released (for deadline tests). */
  hang = false;
  lastBudget: Budget | undefined;

  constructor(
    private readonly clock: { now(): number },
    public ttlMs = HOUR,
  ) {}

  async dockerAuths(binding: Binding, requester: string, budget: Budget): Promise<DockerAuths> {
    this.calls++;
    this.lastBudget = budget;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.hang) await new Promise(() => {});
    if (this.failWith) throw this.failWith;
    const auths: DockerAuths['auths'] = {};
    for (const r of binding.registries) {
      const domains =
        r.kind === 'instance-name'
          ? [`${r.instanceName}-registry.${r.region}.cr.aliyuncs.com`]
          : r.kind === 'personal'
            ? r.domains
            : (r.domains ?? [`${r.instanceId}.cr.aliyuncs.com`]);
      for (const d of domains) auths[d] = { username: `cr_temp_user`, password: `${PASSWORD_MARK}${requester}-${this.calls}` };
    }
    return { auths, expiresAt: this.clock.now() + this.ttlMs };
  }
}

export const denial = (msg = 'AssumeRole denied: NoPermission') => new DenialError(msg, 403, 'Forbidden');

export function binding(n = 1): Binding {
  return {
    chain: { serviceArn: `acs:ram::1234567890:role/svc-${n}`, userArn: 'acs:ram::999:role/acr-pull' },
    registries: [
      { kind: 'instance', instanceId: `cri-abc${n}`, region: 'cn-hangzhou', domains: [`team${n}-registry.cn-hangzhou.cr.aliyuncs.com`, `team${n}-registry-vpc.cn-hangzhou.cr.aliyuncs.com`] },
    ],
  };
}

export function spec(namespace = 'apps', n = 1): PullSecretSpec {
  const b = binding(n);
  return { namespace, name: secretNameFor(b), requester: namespace, binding: b };
}

export const budget = (ms = 5000): Budget => ({ deadline: Date.now() + ms });

/** References a test sets by hand: an object referencing the Secret appears (`add`) or goes (`remove`); counted. */
export class RecordedUsage implements UsageSource {
  private readonly refs = new Map<string, number>();

  add(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    this.refs.set(key, (this.refs.get(key) ?? 0) + 1);
  }

  remove(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const n = (this.refs.get(key) ?? 0) - 1;
    if (n > 0) this.refs.set(key, n);
    else this.refs.delete(key);
  }

  async referenced(): Promise<Set<string>> {
    return new Set(this.refs.keys());
  }
}
