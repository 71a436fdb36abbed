// Remembers (AccessKeyId, SignatureNonce) pairs for the 15-minute replay window. Memory is bounded:
// expired entries go first, and past maxEntries the oldest are dropped (a replay of a dropped nonce
// would then pass; the bound is far above any test's traffic).

export class NonceCache {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly maxEntries: number,
  ) {}

  /** True if the pair was used within the window; otherwise records it and returns false. */
  checkAndRecord(accessKeyId: string, nonce: string, now: number): boolean {
    this.prune(now);
    const key = `${accessKeyId}\n${nonce}`;
    const until = this.seen.get(key);
    if (until !== undefined && until > now) return true;
    this.seen.delete(key); // re-insert at the end to keep insertion order ~ expiry order
    this.seen.set(key, now + this.windowMs);
    return false;
  }

  get size(): number {
    return this.seen.size;
  }

  clear(): void {
    this.seen.clear();
  }

  private prune(now: number): void {
    for (const [key, until] of this.seen) {
      if (until > now && this.seen.size < this.maxEntries) break;
      this.seen.delete(key);
    }
  }
}
