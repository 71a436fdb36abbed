// Deterministic Secret names: the same chain and registries always give the same name, so a dry run, a
// re-invocation and every replica of the webhook agree on it without coordination.
import { createHash } from 'node:crypto';
import type { Binding, RegistryRef } from './model.js';
import { ownString } from '../util/own-string.js';

export const SECRET_PREFIX = 'acr-pull-';

function registryKey(r: RegistryRef): string {
  switch (r.kind) {
    case 'instance':
      return `i:${r.region ?? ''}:${r.instanceId}:${[...(r.domains ?? [])].sort().join(',')}`;
    case 'instance-name':
      return `n:${r.region}:${r.instanceName}`;
    case 'personal':
      return `p:${r.region}:${[...r.domains].sort().join(',')}`;
  }
}

// Both are on the hot path of every annotated admission: computed once per binding object, and the hash
// once per distinct binding (bounded).
const keys = new WeakMap<Binding, string>();
const names = new Map<string, string>();
// The admission memo already holds the names of the derivations in use; past that, a hash costs ~2 µs, and
// 10,000 cached keys cost 3 MiB.
const MAX_NAMES = 2000;

/** Names held by the cache (a test seam: the bound is the point). */
export const cachedNameCount = (): number => names.size;

/** A canonical text of the binding: registry order does not matter, chain order does not exist. */
export function bindingKey(b: Binding): string {
  let key = keys.get(b);
  if (key === undefined) {
    const registries = b.registries.map(registryKey).sort();
    key = JSON.stringify([b.chain.serviceArn ?? '', b.chain.userArn ?? '', registries]);
    keys.set(b, key);
  }
  return key;
}

export function secretNameFor(b: Binding): string {
  const key = bindingKey(b);
  let name = names.get(key);
  if (name === undefined) {
    // Copied: the concatenation would keep the whole hex digest alive for every cached name.
    name = ownString(SECRET_PREFIX + createHash('sha256').update(key).digest('hex').slice(0, 20));
    if (names.size >= MAX_NAMES) names.delete(names.keys().next().value as string);
    names.set(key, name);
  }
  return name;
}
