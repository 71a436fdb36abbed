// Contracts between the admission handler, the credential chain (src/cloud) and the Secret store (src/kube).
import type { Binding, PullSecretSpec } from '../acr/model.js';
import type { Progress } from './progress.js';

/** Absolute deadline (ms since epoch) before which an answer is still useful to the API server. */
export interface Budget {
  deadline: number;
  signal?: AbortSignal;
  /** Where the steps working for this budget say what they wait on (for the denial when the deadline passes). */
  progress?: Progress;
}

/** One registry domain's credentials, as they go into a dockerconfigjson `auths` entry. */
export interface RegistryCredential {
  username: string;
  password: string;
}

/** Registry credentials for one binding, valid until `expiresAt` (ms since epoch). */
export interface DockerAuths {
  auths: Record<string, RegistryCredential>;
  expiresAt: number;
}

/** Obtains registry tokens through the STS chain (implemented in src/cloud). */
export interface TokenSource {
  /** `requester` is the namespace that asked, for RoleSessionName. */
  dockerAuths(binding: Binding, requester: string, budget: Budget): Promise<DockerAuths>;
}

/** How the Secret was made ready, for metrics: already fresh, or written now. */
export type EnsurePath = 'cached' | 'cold';

/** Keeps the pull Secrets in place (implemented in src/kube over the API or in memory). */
export interface PullSecretProvider {
  ensure(spec: PullSecretSpec, budget: Budget): Promise<EnsurePath>;
  /**
   * The hot path, synchronous: true (and the use recorded) when the Secret is already fresh, so the caller
   * needs no promise, timer or deadline at all. Optional; `ensure` alone is always correct.
   */
  fresh?(spec: PullSecretSpec): boolean;
  /** True once the provider can serve (caches synced, identity resolved). */
  ready(): boolean;
}

/**
 * An error whose message is safe to show to the person who created the object
 * (it never carries secret material) and that maps to a denial.
 */
export class DenialError extends Error {
  constructor(
    message: string,
    readonly code: 400 | 403 | 500 | 503 = 500,
    readonly reason = 'InternalError',
  ) {
    super(message);
    this.name = 'DenialError';
  }
}
