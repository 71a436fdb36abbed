// In-memory SecretStore with the API server's write semantics (resourceVersion, 409s, 404s): the store of
// standalone mode and of the tests. Reads are the cache itself.
import { isManaged } from './docker-config.js';
import { ConflictError, NotFoundError, type EventType, type SecretObject, type SecretStore } from './store.js';
import { keyOf } from './util.js';
import { ownString } from '../util/own-string.js';

export interface RecordedEvent {
  namespace: string;
  name: string;
  type: EventType;
  reason: string;
  message: string;
  at: number;
}

export interface MemorySecretStoreOptions {
  now?: () => number;
  /** Delay added to every write (ms), to widen races in tests. */
  writeLatencyMs?: number;
  /** Keeps at most this many events (oldest dropped). */
  maxEvents?: number;
}

export type WriteOp = 'create' | 'replace' | 'delete';

function clone<T>(v: T): T {
  return structuredClone(v);
}

export class MemorySecretStore implements SecretStore {
  private readonly objects = new Map<string, SecretObject>();
  private revision = 0;
  private uidCounter = 0;
  private readonly now: () => number;
  private readonly writeLatencyMs: number;
  private readonly maxEvents: number;
  private started = false;
  readonly events: RecordedEvent[] = [];
  /** Writes made through the interface (not `externalWrite`), for tests and debugging. */
  readonly stats = { create: 0, replace: 0, delete: 0, read: 0, conflicts: 0 };
  /** Called before each write is applied; a test can change the store here to provoke a conflict. */
  beforeWrite?: (op: WriteOp, namespace: string, name: string) => void | Promise<void>;

  constructor(opts: MemorySecretStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.writeLatencyMs = opts.writeLatencyMs ?? 0;
    this.maxEvents = opts.maxEvents ?? 1000;
  }

  get(namespace: string, name: string): SecretObject | undefined {
    const s = this.objects.get(keyOf(namespace, name));
    return s && isManaged(s) ? s : undefined;
  }

  list(): SecretObject[] {
    return [...this.objects.values()].filter(isManaged);
  }

  async read(namespace: string, name: string): Promise<SecretObject | undefined> {
    this.stats.read++;
    await Promise.resolve();
    const s = this.objects.get(keyOf(namespace, name));
    return s ? clone(s) : undefined;
  }

  async create(secret: SecretObject): Promise<SecretObject> {
    const { namespace, name } = secret.metadata;
    await this.pause('create', namespace, name);
    this.stats.create++;
    const key = keyOf(namespace, name);
    if (this.objects.has(key)) {
      this.stats.conflicts++;
      throw new ConflictError(namespace, name, 'AlreadyExists');
    }
    return clone(this.store(secret, undefined));
  }

  async replace(secret: SecretObject): Promise<SecretObject> {
    const { namespace, name, resourceVersion } = secret.metadata;
    await this.pause('replace', namespace, name);
    this.stats.replace++;
    const cur = this.objects.get(keyOf(namespace, name));
    if (!cur) throw new NotFoundError(namespace, name);
    if (!resourceVersion || resourceVersion !== cur.metadata.resourceVersion) {
      this.stats.conflicts++;
      throw new ConflictError(namespace, name, 'Conflict');
    }
    return clone(this.store(secret, cur));
  }

  async delete(namespace: string, name: string, resourceVersion?: string): Promise<boolean> {
    await this.pause('delete', namespace, name);
    this.stats.delete++;
    const key = keyOf(namespace, name);
    const cur = this.objects.get(key);
    if (!cur) return false;
    if (resourceVersion !== undefined && resourceVersion !== cur.metadata.resourceVersion) {
      this.stats.conflicts++;
      throw new ConflictError(namespace, name, 'Conflict');
    }
    this.objects.delete(key);
    return true;
  }

  async recordEvent(secret: SecretObject, type: EventType, reason: string, message: string): Promise<void> {
    this.events.push({ namespace: secret.metadata.namespace, name: secret.metadata.name, type, reason, message, at: this.now() });
    if (this.events.length > this.maxEvents) this.events.splice(0, this.events.length - this.maxEvents);
  }

  async start(): Promise<void> {
    this.started = true;
  }

  async stop(): Promise<void> {
    this.started = false;
  }

  synced(): boolean {
    return this.started;
  }

  /** Another writer (a peer replica, a user) changes the store: not counted in `stats`. */
  externalWrite(secret: SecretObject): SecretObject {
    const cur = this.objects.get(keyOf(secret.metadata.namespace, secret.metadata.name));
    return clone(this.store(secret, cur));
  }

  externalDelete(namespace: string, name: string): boolean {
    return this.objects.delete(keyOf(namespace, name));
  }

  writes(): number {
    return this.stats.create + this.stats.replace + this.stats.delete;
  }

  private store(secret: SecretObject, cur: SecretObject | undefined): SecretObject {
    const obj = clone(secret);
    obj.metadata.resourceVersion = String(++this.revision);
    obj.metadata.uid = cur?.metadata.uid ?? `uid-${++this.uidCounter}`;
    obj.metadata.creationTimestamp = cur?.metadata.creationTimestamp ?? new Date(this.now()).toISOString();
    this.objects.set(ownString(keyOf(obj.metadata.namespace, obj.metadata.name)), obj);
    return obj;
  }

  private async pause(op: WriteOp, namespace: string, name: string): Promise<void> {
    if (this.writeLatencyMs > 0) await new Promise((r) => setTimeout(r, this.writeLatencyMs));
    else await Promise.resolve();
    await this.beforeWrite?.(op, namespace, name);
  }
}
