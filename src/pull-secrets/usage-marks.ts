// In-memory record of when each managed Secret was last known to be in use: by an admission (hot path, no
// write), or by a Pod/ImageCache the collector saw. Persisted lazily into the last-used annotation.
import { keyOf } from './util.js';
import { ownString } from '../util/own-string.js';

export class UsageMarks {
  private readonly marks = new Map<string, number>();

  /** Records a use at `at` (keeps the latest). */
  mark(namespace: string, name: string, at: number): void {
    const key = keyOf(namespace, name);
    const cur = this.marks.get(key);
    // A new key is stored as its own flat copy: the built key is a rope of its parts, several times larger.
    if (cur === undefined) this.marks.set(ownString(key), at);
    else if (at > cur) this.marks.set(key, at);
  }

  get(namespace: string, name: string): number | undefined {
    return this.marks.get(keyOf(namespace, name));
  }

  forget(namespace: string, name: string): void {
    this.marks.delete(keyOf(namespace, name));
  }

  /** [namespace, name, at] of every mark. */
  *entries(): IterableIterator<[string, string, number]> {
    for (const [key, at] of this.marks) {
      const i = key.indexOf('/');
      yield [key.slice(0, i), key.slice(i + 1), at];
    }
  }

  get size(): number {
    return this.marks.size;
  }
}
