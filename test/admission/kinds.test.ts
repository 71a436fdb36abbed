// The per-kind rules with exact results: which images a Pod or an ImageCache pulls, the JSON Patch that adds the
// missing pull Secret references (creating the list or appending to it), and which group/version/kind is served.
import { describe, expect, it } from 'vitest';
import { ImageCacheKind, kindHandler, ObjectShapeError, PodKind } from '../../src/admission/kinds.js';

const S1 = { namespace: 'team-a', name: 'acr-pull-1' };
const S2 = { namespace: 'acr-pull-webhook', name: 'acr-pull-2' };

function shapeError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ObjectShapeError);
    return (err as Error).message;
  }
  throw new Error('no error');
}

describe('Pod', () => {
  it('images: init containers, then containers, then ephemeral containers; entries without a string image skipped', () => {
    const pod = {
      spec: {
        containers: [{ image: 'c1' }, { name: 'no-image' }, { image: 7 }, 'junk', { image: 'c2' }],
        initContainers: [{ image: 'i1' }],
        ephemeralContainers: [{ image: 'e1' }],
      },
    };
    expect(PodKind.images(pod)).toEqual(['i1', 'c1', 'c2', 'e1']);
    expect(PodKind.images({ spec: { containers: null, initContainers: undefined } })).toEqual([]);
    expect(PodKind.images({ spec: {} })).toEqual([]);
  });

  it('refuses a missing spec and container fields that are not lists, naming the field', () => {
    expect(shapeError(() => PodKind.images({}))).toBe('spec is missing or not an object');
    expect(shapeError(() => PodKind.images({ spec: [] }))).toBe('spec is missing or not an object');
    expect(shapeError(() => PodKind.images({ spec: { containers: { image: 'x' } } }))).toBe('spec.containers must be a list');
    expect(shapeError(() => PodKind.images({ spec: { initContainers: 'x' } }))).toBe('spec.initContainers must be a list');
    expect(shapeError(() => PodKind.images({ spec: { ephemeralContainers: 1 } }))).toBe('spec.ephemeralContainers must be a list');
    expect(shapeError(() => PodKind.patch({ spec: 'x' }, [S1]))).toBe('spec is missing or not an object');
  });

  it('patch: creates the list when there is none, appends otherwise, skips names already referenced', () => {
    expect(PodKind.patch({ spec: {} }, [S1, S2])).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'acr-pull-1' }, { name: 'acr-pull-2' }] }]);
    expect(PodKind.patch({ spec: { imagePullSecrets: 'odd' } }, [S1])).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'acr-pull-1' }] }]);
    expect(PodKind.patch({ spec: { imagePullSecrets: [{ name: 'mine' }, 'junk', { name: 'acr-pull-2' }] } }, [S1, S2])).toEqual([
      { op: 'add', path: '/spec/imagePullSecrets/-', value: { name: 'acr-pull-1' } },
    ]);
    expect(PodKind.patch({ spec: { imagePullSecrets: [] } }, [S1, S2])).toEqual([
      { op: 'add', path: '/spec/imagePullSecrets/-', value: { name: 'acr-pull-1' } },
      { op: 'add', path: '/spec/imagePullSecrets/-', value: { name: 'acr-pull-2' } },
    ]);
    expect(PodKind.patch({ spec: { imagePullSecrets: [{ name: 'acr-pull-1' }] } }, [S1])).toEqual([]);
    expect(PodKind.patch({ spec: {} }, [])).toEqual([]);
  });
});

describe('ImageCache', () => {
  it('images: the string entries of spec.images; anything but a list is refused', () => {
    expect(ImageCacheKind.images({ spec: { images: ['a:1', 3, null, 'b:2'] } })).toEqual(['a:1', 'b:2']);
    expect(shapeError(() => ImageCacheKind.images({ spec: {} }))).toBe('spec.images must be a list of image references');
    expect(shapeError(() => ImageCacheKind.images({ spec: { images: 'a:1' } }))).toBe('spec.images must be a list of image references');
  });

  it('patch: references are "namespace:name"; the list is created or appended to, present ones skipped', () => {
    expect(ImageCacheKind.patch({ spec: { images: [] } }, [S1, S2])).toEqual([
      { op: 'add', path: '/spec/imagePullSecrets', value: ['team-a:acr-pull-1', 'acr-pull-webhook:acr-pull-2'] },
    ]);
    expect(ImageCacheKind.patch({ spec: { imagePullSecrets: ['team-a:acr-pull-1', 'other:x'] } }, [S1, S2])).toEqual([
      { op: 'add', path: '/spec/imagePullSecrets/-', value: 'acr-pull-webhook:acr-pull-2' },
    ]);
    expect(ImageCacheKind.patch({ spec: { imagePullSecrets: ['team-a:acr-pull-1'] } }, [S1])).toEqual([]);
  });
});

describe('kindHandler', () => {
  it('serves core/v1 Pods and eci.alibabacloud.com/v1 ImageCaches, nothing else', () => {
    expect(kindHandler({ group: '', version: 'v1', kind: 'Pod' })?.name).toBe('Pod');
    expect(kindHandler({ group: 'eci.alibabacloud.com', version: 'v1', kind: 'ImageCache' })?.name).toBe('ImageCache');
    for (const gvk of [
      { group: 'apps', version: 'v1', kind: 'Pod' },
      { group: '', version: 'v2', kind: 'Pod' },
      { group: '', version: 'v1', kind: 'Deployment' },
      { group: 'eci.alibabacloud.com', version: 'v2', kind: 'ImageCache' },
      { group: 'example.com', version: 'v1', kind: 'ImageCache' },
      { group: 'eci.alibabacloud.com', version: 'v1', kind: 'Pod' },
    ]) {
      expect(kindHandler(gvk), JSON.stringify(gvk)).toBeUndefined();
    }
  });
});
