// The pull Secret as an object: built from a spec and registry credentials, and read back (binding, expiry, usage).
// Pure functions only. Labels carry hashes (label values are short and restricted); the human-readable binding
// (role ARNs, instance IDs: not secret) goes into an annotation; the credentials only into `.dockerconfigjson`.
import { createHash } from 'node:crypto';
import type { Binding, PullSecretSpec, RegistryRef, RoleChain } from '../acr/model.js';
import { bindingKey } from '../acr/secret-name.js';
import type { SecretObject } from './store.js';
import { DenialError, type DockerAuths } from './types.js';

const PREFIX = 'acr-pull-webhook.k8s.aliyun.com';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'acr-pull-webhook';
/** Label selector of every Secret the webhook manages. */
export const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
/** Namespace whose workload asked for the Secret. */
export const REQUESTER_LABEL = `${PREFIX}/requester`;
/** Short hash of the role chain. */
export const CHAIN_LABEL = `${PREFIX}/chain`;
/** Short hash of the registry set. */
export const REGISTRIES_LABEL = `${PREFIX}/registries`;
/** JSON of the binding (chain ARNs and registries): what the refresher renews the Secret with. */
export const BINDING_ANNOTATION = `${PREFIX}/binding`;
/** ISO-8601 expiry of the registry tokens inside. */
export const EXPIRES_AT_ANNOTATION = `${PREFIX}/expires-at`;
/** ISO-8601 time the tokens inside were obtained. */
export const REFRESHED_AT_ANNOTATION = `${PREFIX}/refreshed-at`;
/** ISO-8601 time the Secret was last known to be referenced (maintained off the hot path, for collection). */
export const LAST_USED_AT_ANNOTATION = `${PREFIX}/last-used-at`;

export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
export const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** A label-safe short hash (20 hex characters) of a text. */
export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 20);
}

/** The text a label value would be, or a hash of it when it is not label-safe. */
export function labelValue(text: string): string {
  return text.length <= 63 && LABEL_VALUE.test(text) ? text : shortHash(text);
}

export function chainHash(chain: RoleChain): string {
  return shortHash(JSON.stringify([chain.serviceArn ?? '', chain.userArn ?? '']));
}

export function registriesHash(registries: readonly RegistryRef[]): string {
  return shortHash(bindingKey({ chain: {}, registries: [...registries] }));
}

/** True when two bindings open the same registries as the same identity (order does not matter). */
export function sameBinding(a: Binding, b: Binding): boolean {
  return bindingKey(a) === bindingKey(b);
}

export function isManaged(secret: SecretObject): boolean {
  return secret.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

export interface BuildOptions {
  /** Time the credentials were obtained (ms since epoch). */
  now: number;
  /** The current object, when replacing: its resourceVersion, uid and foreign labels/annotations are kept. */
  previous?: SecretObject;
  /** Latest known use (ms since epoch); the annotation keeps the later of this and the previous value. */
  lastUsedAt?: number;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** The `.dockerconfigjson` text for a set of credentials, domains sorted for a stable output. */
export function dockerConfigJson(auths: DockerAuths['auths']): string {
  const out: Record<string, { username: string; password: string; auth: string }> = {};
  for (const domain of Object.keys(auths).sort()) {
    const c = auths[domain];
    if (!c) continue;
    out[domain] = { username: c.username, password: c.password, auth: b64(`${c.username}:${c.password}`) };
  }
  return JSON.stringify({ auths: out });
}

/** The binding annotation's text: what the Secret serves, read back by renewals and freshness checks. */
export function bindingAnnotation(binding: Binding): string {
  return JSON.stringify(binding);
}

/** The Secret to create (or, with `previous`, to replace) for a spec and its credentials. */
export function buildPullSecret(spec: PullSecretSpec, auths: DockerAuths, opts: BuildOptions): SecretObject {
  if (Object.keys(auths.auths).length === 0) {
    throw new DenialError(`no registry credentials were obtained for pull Secret ${spec.namespace}/${spec.name}`, 500);
  }
  const prev = opts.previous;
  const prevUsed = prev ? parseTime(prev.metadata.annotations?.[LAST_USED_AT_ANNOTATION]) : undefined;
  const lastUsed = maxDefined(prevUsed, opts.lastUsedAt);

  const labels: Record<string, string> = {
    ...(prev?.metadata.labels ?? {}),
    [MANAGED_BY_LABEL]: MANAGED_BY_VALUE,
    [REQUESTER_LABEL]: labelValue(spec.requester),
    [CHAIN_LABEL]: chainHash(spec.binding.chain),
    [REGISTRIES_LABEL]: registriesHash(spec.binding.registries),
  };
  const annotations: Record<string, string> = {
    ...(prev?.metadata.annotations ?? {}),
    [BINDING_ANNOTATION]: bindingAnnotation(spec.binding),
    [EXPIRES_AT_ANNOTATION]: iso(auths.expiresAt),
    [REFRESHED_AT_ANNOTATION]: iso(opts.now),
  };
  if (lastUsed !== undefined) annotations[LAST_USED_AT_ANNOTATION] = iso(lastUsed);

  const metadata: SecretObject['metadata'] = { name: spec.name, namespace: spec.namespace, labels, annotations };
  if (prev?.metadata.resourceVersion) metadata.resourceVersion = prev.metadata.resourceVersion;
  if (prev?.metadata.uid) metadata.uid = prev.metadata.uid;
  if (prev?.metadata.ownerReferences) metadata.ownerReferences = prev.metadata.ownerReferences;
  if (prev?.metadata.finalizers) metadata.finalizers = prev.metadata.finalizers;

  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata,
    type: DOCKER_CONFIG_JSON_TYPE,
    data: { [DOCKER_CONFIG_JSON_KEY]: b64(dockerConfigJson(auths.auths)) },
  };
}

/** The same Secret with its last-used annotation moved to `at` (other fields untouched). */
export function withLastUsed(secret: SecretObject, at: number): SecretObject {
  return {
    ...secret,
    metadata: {
      ...secret.metadata,
      annotations: { ...(secret.metadata.annotations ?? {}), [LAST_USED_AT_ANNOTATION]: iso(at) },
    },
  };
}

/** What a managed Secret says about itself. */
export interface DecodedPullSecret {
  namespace: string;
  name: string;
  binding: Binding;
  /** Namespace that asked (label), falling back to the Secret's namespace. */
  requester: string;
  expiresAt: number;
  refreshedAt?: number;
  lastUsedAt?: number;
  createdAt?: number;
}

export function parseTime(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const t = Date.parse(text);
  return Number.isFinite(t) ? t : undefined;
}

function maxDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function optString(v: unknown): boolean {
  return v === undefined || typeof v === 'string';
}

function isRegistryRef(v: unknown): v is RegistryRef {
  if (!v || typeof v !== 'object') return false;
  const r = v as Record<string, unknown>;
  switch (r.kind) {
    case 'instance':
      return typeof r.instanceId === 'string' && optString(r.region) && (r.domains === undefined || isStringArray(r.domains));
    case 'instance-name':
      return typeof r.instanceName === 'string' && typeof r.region === 'string';
    case 'personal':
      return typeof r.region === 'string' && isStringArray(r.domains);
    default:
      return false;
  }
}

/** Parses the binding annotation; undefined when absent or malformed. */
export function parseBinding(text: string | undefined): Binding | undefined {
  if (!text) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object') return undefined;
  const { chain, registries } = v as { chain?: unknown; registries?: unknown };
  if (!chain || typeof chain !== 'object') return undefined;
  const c = chain as Record<string, unknown>;
  if (!optString(c.serviceArn) || !optString(c.userArn)) return undefined;
  if (!Array.isArray(registries) || registries.length === 0 || !registries.every(isRegistryRef)) return undefined;
  const outChain: RoleChain = {};
  if (typeof c.serviceArn === 'string') outChain.serviceArn = c.serviceArn;
  if (typeof c.userArn === 'string') outChain.userArn = c.userArn;
  return { chain: outChain, registries };
}

/** Reads a managed Secret back; undefined when it is not one the webhook can renew (wrong type, no binding, no expiry). */
export function decodePullSecret(secret: SecretObject): DecodedPullSecret | undefined {
  if (!isManaged(secret) || secret.type !== DOCKER_CONFIG_JSON_TYPE) return undefined;
  if (!secret.data?.[DOCKER_CONFIG_JSON_KEY]) return undefined;
  const a = secret.metadata.annotations ?? {};
  const binding = parseBinding(a[BINDING_ANNOTATION]);
  const expiresAt = parseTime(a[EXPIRES_AT_ANNOTATION]);
  if (!binding || expiresAt === undefined) return undefined;
  const out: DecodedPullSecret = {
    namespace: secret.metadata.namespace,
    name: secret.metadata.name,
    binding,
    requester: secret.metadata.labels?.[REQUESTER_LABEL] || secret.metadata.namespace,
    expiresAt,
  };
  const refreshedAt = parseTime(a[REFRESHED_AT_ANNOTATION]);
  if (refreshedAt !== undefined) out.refreshedAt = refreshedAt;
  const lastUsedAt = parseTime(a[LAST_USED_AT_ANNOTATION]);
  if (lastUsedAt !== undefined) out.lastUsedAt = lastUsedAt;
  const createdAt = parseTime(secret.metadata.creationTimestamp);
  if (createdAt !== undefined) out.createdAt = createdAt;
  return out;
}

export interface DecodedAuth {
  username: string;
  password: string;
  auth: string;
}

/** Parses `.dockerconfigjson` (for tests and diagnostics; never log the result). */
export function decodeDockerConfig(secret: SecretObject): Record<string, DecodedAuth> | undefined {
  const raw = secret.data?.[DOCKER_CONFIG_JSON_KEY];
  if (!raw) return undefined;
  try {
    const v = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as { auths?: Record<string, DecodedAuth> };
    return v.auths && typeof v.auths === 'object' ? v.auths : undefined;
  } catch {
    return undefined;
  }
}

/**
 * True when the tokens must be renewed now: they expire within the refresh threshold. Tokens that lived less
 * than twice the threshold use half their lifetime instead, so a short-lived token does not make every
 * admission write.
 */
export function refreshDue(d: Pick<DecodedPullSecret, 'expiresAt' | 'refreshedAt'>, now: number, thresholdMs: number): boolean {
  const lifetime = d.refreshedAt !== undefined ? d.expiresAt - d.refreshedAt : Number.POSITIVE_INFINITY;
  const threshold = Math.min(thresholdMs, Math.max(0, lifetime / 2));
  return d.expiresAt - now <= threshold;
}
