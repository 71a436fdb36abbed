// The grammar of the ECI ACR annotations. Pure: annotations in, chains and instances (or a denial) out.
import type { RoleChain } from './model.js';
import { quote } from '../util/quote.js';
import { INSTANCE_ID, REGION, ROLE_ARN } from './ids.js';

export const ANNOTATION = {
  instanceIds: 'k8s.aliyun.com/acr-instance-ids',
  instanceId: 'k8s.aliyun.com/acr-instance-id',
  serviceArns: 'k8s.aliyun.com/acr-service-arns',
  userArns: 'k8s.aliyun.com/acr-user-arns',
} as const;

const KNOWN_KEYS: readonly string[] = Object.values(ANNOTATION);
const ACR_PREFIX = 'k8s.aliyun.com/acr-';
const VENDOR_PREFIX = 'k8s.aliyun.com/';

/** Bounds that keep hostile annotations cheap to reject. */
export const LIMITS = { valueLength: 4096, items: 32 } as const;


export interface InstanceRef {
  instanceId: string;
  /** Region prefix from the annotation; undefined means the configured default region. */
  region?: string;
}

export interface AcrAnnotations {
  /** One entry per credential chain; `[{}]` when no ARN is given (the webhook's own identity). */
  chains: RoleChain[];
  /** Instances named by ID; empty when the images' default domains decide. */
  instances: InstanceRef[];
  /** The annotation the instances were read from, for messages about them. */
  instancesFrom: string;
}

export type AnnotationResult =
  | { kind: 'none' }
  | { kind: 'ok'; value: AcrAnnotations }
  | { kind: 'invalid'; message: string };

class Invalid extends Error {}

/** Reads the ACR annotations of one object. `annotations` is the raw (untrusted) metadata.annotations. */
export function parseAcrAnnotations(annotations: unknown): AnnotationResult {
  if (annotations === undefined || annotations === null) return { kind: 'none' };
  if (typeof annotations !== 'object' || Array.isArray(annotations)) {
    return { kind: 'invalid', message: 'metadata.annotations must be an object of strings' };
  }
  const raw = annotations as Record<string, unknown>;
  let seen = false;
  try {
    for (const key of Object.keys(raw)) {
      if (!key.startsWith(VENDOR_PREFIX)) continue;
      if (KNOWN_KEYS.includes(key)) {
        seen = true;
        continue;
      }
      const suggestion = closestKnownKey(key);
      if (key.startsWith(ACR_PREFIX) || suggestion.distance <= 3) {
        throw new Invalid(`unknown annotation ${quote(key)}: did you mean "${suggestion.key}"?`);
      }
    }
    if (!seen) return { kind: 'none' };
    return { kind: 'ok', value: readKnown(raw) };
  } catch (e) {
    if (e instanceof Invalid) return { kind: 'invalid', message: e.message };
    throw e;
  }
}

function readKnown(raw: Record<string, unknown>): AcrAnnotations {
  const instances = list(raw, ANNOTATION.instanceIds)?.map((item) => parseInstance(ANNOTATION.instanceIds, item));
  const singular = list(raw, ANNOTATION.instanceId);
  let single: InstanceRef | undefined;
  if (singular) {
    if (singular.length !== 1) {
      throw new Invalid(`${ANNOTATION.instanceId} takes exactly one instance ID; use ${ANNOTATION.instanceIds} for a list`);
    }
    single = parseInstance(ANNOTATION.instanceId, singular[0]!);
  }
  if (instances && single && !instances.some((i) => sameInstance(i, single!))) {
    throw new Invalid(
      `${ANNOTATION.instanceId} ${quote(formatInstance(single))} is not in ${ANNOTATION.instanceIds}: ` +
        'remove the older singular annotation or list the same instance in both',
    );
  }
  const allInstances = instances ?? (single ? [single] : []);
  rejectDuplicates(ANNOTATION.instanceIds, allInstances.map((i) => i.instanceId));

  const services = list(raw, ANNOTATION.serviceArns)?.map((a) => parseArn(ANNOTATION.serviceArns, a)) ?? [];
  const users = list(raw, ANNOTATION.userArns)?.map((a) => parseArn(ANNOTATION.userArns, a)) ?? [];
  const chains = pairChains(services, users);
  // Which keys the chains came from, so a count mismatch names what to edit.
  const chainKeys = users.length > 0 ? `${ANNOTATION.serviceArns}, ${ANNOTATION.userArns}` : ANNOTATION.serviceArns;
  const instancesFrom = instances ? ANNOTATION.instanceIds : ANNOTATION.instanceId;

  if (allInstances.length > 0 && chains.length > 1 && chains.length !== allInstances.length) {
    throw new Invalid(
      `${chains.length} credential chains (${chainKeys}) but ${allInstances.length} instance IDs in ${instancesFrom}: ` +
        `give one chain for all instances, or one chain per instance (paired by position in ${ANNOTATION.instanceIds})`,
    );
  }
  if (allInstances.length === 0 && chains.length > 1) {
    throw new Invalid(
      `${chains.length} credential chains (${chainKeys}) but no ${ANNOTATION.instanceIds}: name the instance each ` +
        'chain is for, in the same order',
    );
  }
  return { chains, instances: allInstances, instancesFrom };
}

function pairChains(services: string[], users: string[]): RoleChain[] {
  if (users.length > 0 && services.length === 0) {
    throw new Invalid(
      `${ANNOTATION.userArns} needs ${ANNOTATION.serviceArns}: the user role is assumed with the service role's ` +
        'credentials, so add the RAM role of the workload\'s account that the user role trusts',
    );
  }
  if (users.length === 0) return services.length === 0 ? [{}] : services.map((serviceArn) => ({ serviceArn }));
  if (services.length === 1) return users.map((userArn) => ({ serviceArn: services[0]!, userArn }));
  if (services.length === users.length) return users.map((userArn, i) => ({ serviceArn: services[i]!, userArn }));
  throw new Invalid(
    `${ANNOTATION.serviceArns} lists ${services.length} ARNs but ${ANNOTATION.userArns} lists ${users.length}: ` +
      'give one service ARN for all user ARNs, or exactly one service ARN per user ARN (paired by position)',
  );
}

/** Splits a comma-separated annotation value; undefined when the key is absent. */
function list(raw: Record<string, unknown>, key: string): string[] | undefined {
  if (!(key in raw)) return undefined;
  const value = raw[key];
  if (typeof value !== 'string') throw new Invalid(`${key} must be a string, got ${quote(JSON.stringify(value) ?? typeof value)}`);
  if (value.length > LIMITS.valueLength) {
    throw new Invalid(`${key} is ${value.length} characters long; the limit is ${LIMITS.valueLength}`);
  }
  const items = value.split(',').map((s) => s.trim());
  if (items.length > LIMITS.items) throw new Invalid(`${key} lists ${items.length} items; the limit is ${LIMITS.items}`);
  if (items.length === 1 && items[0] === '') throw new Invalid(`${key} is empty: remove it or give a value`);
  items.forEach((item, i) => {
    if (item === '') throw new Invalid(`${key} has an empty item at position ${i + 1} in ${quote(value)}`);
  });
  return items;
}

function parseInstance(key: string, item: string): InstanceRef {
  const colon = item.indexOf(':');
  const region = colon >= 0 ? item.slice(0, colon) : undefined;
  const instanceId = colon >= 0 ? item.slice(colon + 1) : item;
  if (region !== undefined && !REGION.test(region)) {
    throw new Invalid(`${key}: ${quote(region)} in ${quote(item)} is not a region ID (expected e.g. cn-beijing:cri-xxxx)`);
  }
  if (!INSTANCE_ID.test(instanceId)) {
    throw new Invalid(
      `${key}: ${quote(instanceId)} is not an ACR Enterprise Edition instance ID (expected cri- followed by ` +
        'lower-case letters and digits, optionally prefixed by a region: cn-beijing:cri-xxxx)',
    );
  }
  return region === undefined ? { instanceId } : { instanceId, region };
}

function parseArn(key: string, item: string): string {
  if (!ROLE_ARN.test(item)) {
    throw new Invalid(
      `${key}: ${quote(item)} is not a RAM role ARN (expected acs:ram::<account id>:role/<role name>, the role ` +
        'name 1-64 letters, digits, "." or "-")',
    );
  }
  return item;
}

function rejectDuplicates(key: string, ids: string[]): void {
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) throw new Invalid(`${key} names instance ${quote(dup)} twice`);
}

function sameInstance(a: InstanceRef, b: InstanceRef): boolean {
  return a.instanceId === b.instanceId && (a.region === undefined || b.region === undefined || a.region === b.region);
}

function formatInstance(i: InstanceRef): string {
  return i.region ? `${i.region}:${i.instanceId}` : i.instanceId;
}

function closestKnownKey(key: string): { key: string; distance: number } {
  let best = { key: KNOWN_KEYS[0]!, distance: Number.POSITIVE_INFINITY };
  for (const known of KNOWN_KEYS) {
    const distance = levenshtein(key, known, 8);
    if (distance < best.distance) best = { key: known, distance };
  }
  return best;
}

/** Edit distance, giving up (returning `cap + 1`) once it exceeds `cap`: keys can be long and hostile. */
export function levenshtein(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) > cap) return cap + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > cap) return cap + 1;
    prev = cur;
  }
  return prev[b.length]!;
}
