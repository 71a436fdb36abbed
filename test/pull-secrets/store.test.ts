// The store's error classes: exact names, messages and default reason.
import { beforeEach, describe, expect, it, vi } from 'vitest';

type Store = typeof import('../../src/pull-secrets/store.js');
let s: Store;

beforeEach(async () => {
  vi.resetModules();
  s = await import('../../src/pull-secrets/store.js');
});

describe('ConflictError', () => {
  it('defaults to the Conflict reason and names the Secret', () => {
    const e = new s.ConflictError('apps', 'acr-pull-abc');
    expect(e).toBeInstanceOf(Error);
    expect(e.reason).toBe('Conflict');
    expect(e.message).toBe('Secret apps/acr-pull-abc: Conflict');
    expect(e.name).toBe('ConflictError');
    expect([e.namespace, e.secretName]).toEqual(['apps', 'acr-pull-abc']);
  });

  it('carries AlreadyExists when told', () => {
    const e = new s.ConflictError('apps', 'acr-pull-abc', 'AlreadyExists');
    expect(e.reason).toBe('AlreadyExists');
    expect(e.message).toBe('Secret apps/acr-pull-abc: AlreadyExists');
  });
});

describe('NotFoundError', () => {
  it('names the Secret that is gone', () => {
    const e = new s.NotFoundError('apps', 'acr-pull-abc');
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toBe('Secret apps/acr-pull-abc not found');
    expect(e.name).toBe('NotFoundError');
    expect([e.namespace, e.secretName]).toEqual(['apps', 'acr-pull-abc']);
  });
});
