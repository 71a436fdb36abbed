// Deterministic Secret names: the same chain and registries always give the same name, so a dry run, a
// re-invocation and every replica of the webhook agree on it without coordination.
import { createHash } from 'node:crypto';
import type { Binding, RegistryRef } from './model.js';

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

/** A canonical text of the binding: registry order does not matter, chain order does not exist. */
export function bindingKey(b: Binding): string {
  const registries = b.registries.map(registryKey).sort();
  return JSON.stringify([b.chain.serviceArn ?? '', b.chain.userArn ?? '', registries]);
}

export function secretNameFor(b: Binding): string {
  return SECRET_PREFIX + createHash('sha256').update(bindingKey(b)).digest('hex').slice(0, 20);
}
