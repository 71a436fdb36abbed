// V8 keeps a substring (and a string value from JSON.parse) as a slice of its parent, and a concatenation as a
// rope of its parts: caching a 40-character token can keep a whole response body alive, and a cache key built
// from parts costs several times its length. Values and keys that outlive a request are copied out first.

/** A flat copy of `s` that shares no memory with the strings it was made from. Exact for any UTF-16 content. */
export function ownString(s: string): string {
  // UTF-16 round trip, not UTF-8: a lone surrogate would come back as U+FFFD and two keys could merge.
  return Buffer.from(s, 'utf16le').toString('utf16le');
}
