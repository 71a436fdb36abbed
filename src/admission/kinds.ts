// What differs between the kinds the webhook mutates: where images are, and how a pull Secret is referenced.
// Patches are built from the raw request JSON; the object is never round-tripped through a typed model.
import type { GroupVersionKind } from './review.js';
import type { Operation } from './json-patch.js';
import { isObject } from '../util/is-object.js';

export class ObjectShapeError extends Error {}

export interface KindHandler {
  /** 'Pod' or 'ImageCache', for messages and metrics. */
  name: 'Pod' | 'ImageCache';
  /** Every image reference the object will pull. */
  images(object: Record<string, unknown>): string[];
  /** Ops that add the references not already present, keeping the user's own in order. */
  patch(object: Record<string, unknown>, secrets: { namespace: string; name: string }[]): Operation[];
}


function specOf(object: Record<string, unknown>): Record<string, unknown> {
  if (!isObject(object.spec)) throw new ObjectShapeError('spec is missing or not an object');
  return object.spec;
}

function containerImages(list: unknown, field: string, out: string[]): void {
  if (list === undefined || list === null) return;
  if (!Array.isArray(list)) throw new ObjectShapeError(`spec.${field} must be a list`);
  for (const c of list) if (isObject(c) && typeof c.image === 'string') out.push(c.image);
}

/** Appends `values` to the array at `path`, or creates it when it is absent (an `add` needs its parent). */
function appendOps(current: unknown, path: string, values: unknown[]): Operation[] {
  if (values.length === 0) return [];
  if (!Array.isArray(current)) return [{ op: 'add', path, value: values }];
  return values.map((value) => ({ op: 'add', path: `${path}/-`, value }));
}

export const PodKind: KindHandler = {
  name: 'Pod',
  images(object) {
    const spec = specOf(object);
    const out: string[] = [];
    containerImages(spec.initContainers, 'initContainers', out);
    containerImages(spec.containers, 'containers', out);
    containerImages(spec.ephemeralContainers, 'ephemeralContainers', out);
    return out;
  },
  patch(object, secrets) {
    const current = specOf(object).imagePullSecrets;
    const present = new Set(Array.isArray(current) ? current.map((r) => (isObject(r) ? r.name : undefined)) : []);
    const missing = secrets.filter((s) => !present.has(s.name)).map((s) => ({ name: s.name }));
    return appendOps(current, '/spec/imagePullSecrets', missing);
  },
};

export const ImageCacheKind: KindHandler = {
  name: 'ImageCache',
  images(object) {
    const images = specOf(object).images;
    if (!Array.isArray(images)) throw new ObjectShapeError('spec.images must be a list of image references');
    return images.filter((i): i is string => typeof i === 'string');
  },
  patch(object, secrets) {
    const current = specOf(object).imagePullSecrets;
    const present = new Set(Array.isArray(current) ? current : []);
    const missing = secrets.map((s) => `${s.namespace}:${s.name}`).filter((ref) => !present.has(ref));
    return appendOps(current, '/spec/imagePullSecrets', missing);
  },
};

export function kindHandler(gvk: GroupVersionKind): KindHandler | undefined {
  if (gvk.group === '' && gvk.version === 'v1' && gvk.kind === 'Pod') return PodKind;
  if (gvk.group === 'eci.alibabacloud.com' && gvk.version === 'v1' && gvk.kind === 'ImageCache') return ImageCacheKind;
  return undefined;
}
