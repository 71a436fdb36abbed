// The storage contract of the pull Secrets: a local cache for the hot path plus writes with optimistic concurrency.
// Implemented over the Kubernetes API (src/kube/secret-store.ts) and in memory (memory-store.ts).

/** The subset of ObjectMeta the webhook reads and writes. */
export interface SecretMetadata {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  uid?: string;
  /** ISO-8601, set by the store. */
  creationTimestamp?: string;
  ownerReferences?: unknown[];
  finalizers?: string[];
}

/** A core/v1 Secret as the stores exchange it (structurally compatible with client-node's V1Secret). */
export interface SecretObject {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: SecretMetadata;
  type?: string;
  data?: Record<string, string>;
}

export type EventType = 'Normal' | 'Warning';

/** The object was changed or created by someone else (HTTP 409: `Conflict` or `AlreadyExists`). */
export class ConflictError extends Error {
  constructor(
    readonly namespace: string,
    readonly secretName: string,
    readonly reason: 'Conflict' | 'AlreadyExists' = 'Conflict',
  ) {
    super(`Secret ${namespace}/${secretName}: ${reason}`);
    this.name = 'ConflictError';
  }
}

/** The object does not exist (HTTP 404). */
export class NotFoundError extends Error {
  constructor(
    readonly namespace: string,
    readonly secretName: string,
  ) {
    super(`Secret ${namespace}/${secretName} not found`);
    this.name = 'NotFoundError';
  }
}

export interface SecretStore {
  /** The managed Secret from the local cache: synchronous, never an API call. Treat the result as read-only. */
  get(namespace: string, name: string): SecretObject | undefined;
  /** Every managed Secret in the local cache. */
  list(): SecretObject[];
  /** Reads through to the source of truth (after a conflict); any Secret, managed or not. */
  read(namespace: string, name: string): Promise<SecretObject | undefined>;
  /** Creates; `ConflictError('AlreadyExists')` when the name is taken. Updates the cache with the result. */
  create(secret: SecretObject): Promise<SecretObject>;
  /**
   * Replaces the object whose `metadata.resourceVersion` is given; `ConflictError` when it changed since,
   * `NotFoundError` when it is gone. Updates the cache with the result.
   */
  replace(secret: SecretObject): Promise<SecretObject>;
  /**
   * Deletes, with a resourceVersion precondition when given (`ConflictError` when it does not hold).
   * Resolves false when the object was already gone.
   */
  delete(namespace: string, name: string, resourceVersion?: string): Promise<boolean>;
  /** Records an event about the Secret. Best effort: never rejects. The message must not carry secrets. */
  recordEvent(secret: SecretObject, type: EventType, reason: string, message: string): Promise<void>;
  /** Starts filling the cache; resolves once it has been filled the first time. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True once the cache has been filled at least once. */
  synced(): boolean;
}
