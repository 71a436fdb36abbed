// The admission.k8s.io/v1 AdmissionReview wire format: checking what arrives, shaping what leaves.
import type { Operation } from './json-patch.js';
import { isObject } from '../util/is-object.js';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

/** The fields of AdmissionRequest the webhook reads; everything else stays untouched in `raw`. */
export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  operation: string;
  subResource?: string;
  namespace?: string;
  name?: string;
  dryRun: boolean;
  object: unknown;
  /** UPDATE: the object before the change. */
  oldObject?: unknown;
}

export class TransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransportError';
  }
}


/** Validates the envelope; a TransportError means HTTP 400 (there is no uid to answer a review with). */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) throw new TransportError('body must be a JSON object (an AdmissionReview)');
  if (body.kind !== 'AdmissionReview') throw new TransportError('kind must be "AdmissionReview"');
  if (body.apiVersion !== 'admission.k8s.io/v1') {
    throw new TransportError('apiVersion must be "admission.k8s.io/v1" (register the webhook with admissionReviewVersions: [v1])');
  }
  const req = body.request;
  if (!isObject(req)) throw new TransportError('request is missing or not an object');
  if (typeof req.uid !== 'string' || req.uid === '') throw new TransportError('request.uid is missing or not a string');
  const kind = req.kind;
  const gvk: GroupVersionKind = isObject(kind)
    ? { group: String(kind.group ?? ''), version: String(kind.version ?? ''), kind: String(kind.kind ?? '') }
    : { group: '', version: '', kind: '' };
  return {
    uid: req.uid,
    kind: gvk,
    operation: typeof req.operation === 'string' ? req.operation : '',
    subResource: typeof req.subResource === 'string' && req.subResource !== '' ? req.subResource : undefined,
    namespace: typeof req.namespace === 'string' && req.namespace !== '' ? req.namespace : undefined,
    name: typeof req.name === 'string' && req.name !== '' ? req.name : undefined,
    dryRun: req.dryRun === true,
    object: req.object,
    ...(req.oldObject !== undefined && req.oldObject !== null ? { oldObject: req.oldObject } : {}),
  };
}

export interface AdmissionResponseBody {
  uid: string;
  allowed: boolean;
  patch?: string;
  patchType?: 'JSONPatch';
  status?: { code: number; message: string; reason?: string };
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponseBody;
}

function envelope(response: AdmissionResponseBody): AdmissionReviewResponse {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

const encoded = new WeakMap<Operation[], string>();

/** base64 of the JSON patch; memoized per array, since the plan hands out one shared array per derivation. */
function encodePatch(patch: Operation[]): string {
  let text = encoded.get(patch);
  if (text === undefined) {
    text = Buffer.from(JSON.stringify(patch)).toString('base64');
    encoded.set(patch, text);
  }
  return text;
}

export function allow(uid: string, patch?: Operation[], warnings?: string[]): AdmissionReviewResponse {
  const response: AdmissionResponseBody = { uid, allowed: true };
  // patch and patchType travel together or not at all; an empty patch is no patch.
  if (patch && patch.length > 0) {
    response.patch = encodePatch(patch);
    response.patchType = 'JSONPatch';
  }
  if (warnings && warnings.length > 0) response.warnings = warnings;
  return envelope(response);
}

const REASONS: Record<number, string> = { 400: 'BadRequest', 403: 'Forbidden', 500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout' };

export function deny(uid: string, code: number, message: string): AdmissionReviewResponse {
  return envelope({ uid, allowed: false, status: { code, message, reason: REASONS[code] ?? 'BadRequest' } });
}
