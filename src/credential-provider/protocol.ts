// The kubelet's exec credential provider protocol (KEP-2133; service-account tokens: KEP-4412): a
// CredentialProviderRequest on stdin, a CredentialProviderResponse on stdout. Field names follow
// k8s.io/kubelet/pkg/apis/credentialprovider/v1 (v0.33). Pure: text in, values out.
import { quote } from '../util/quote.js';

const GROUP = 'credentialprovider.kubelet.k8s.io';
/** v1 is GA since 1.26; the beta and alpha versions have the same shape without the service-account fields. */
const VERSIONS = new Set([`${GROUP}/v1`, `${GROUP}/v1beta1`, `${GROUP}/v1alpha1`]);

/** Bounds on what the kubelet sends, so a hostile or broken request is cheap to refuse. */
export const REQUEST_LIMITS = { bytes: 1 << 20, image: 4096, token: 16 << 10, annotations: 64, annotationValue: 4096 } as const;

export interface ProviderRequest {
  /** The response must use the request's apiVersion: the kubelet refuses any other. */
  apiVersion: string;
  image: string;
  /** The Pod's ServiceAccount token (only with tokenAttributes in the kubelet's config). */
  serviceAccountToken?: string;
  /** The ServiceAccount's annotations the kubelet was told to pass (tokenAttributes.*AnnotationKeys). */
  serviceAccountAnnotations?: Record<string, string>;
}

/** The input is not a request this plugin can answer: a configuration or version problem on the node. */
export class RequestError extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseRequest(text: string): ProviderRequest {
  if (text.length > REQUEST_LIMITS.bytes) throw new RequestError(`the request is ${text.length} bytes; the limit is ${REQUEST_LIMITS.bytes}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new RequestError('the request on stdin is not JSON (expected a CredentialProviderRequest from the kubelet)');
  }
  if (!isObject(doc)) throw new RequestError('the request on stdin is not a JSON object');
  if (doc.kind !== 'CredentialProviderRequest') throw new RequestError(`expected kind CredentialProviderRequest, got ${quote(String(doc.kind))}`);
  const apiVersion = typeof doc.apiVersion === 'string' ? doc.apiVersion : '';
  if (!VERSIONS.has(apiVersion)) {
    throw new RequestError(`unsupported apiVersion ${quote(apiVersion)}: set apiVersion ${GROUP}/v1 in the kubelet's CredentialProviderConfig`);
  }
  const { image, serviceAccountToken, serviceAccountAnnotations } = doc;
  if (typeof image !== 'string' || image === '') throw new RequestError('the request has no image');
  if (image.length > REQUEST_LIMITS.image) throw new RequestError(`the image reference is ${image.length} characters long; the limit is ${REQUEST_LIMITS.image}`);
  const req: ProviderRequest = { apiVersion, image };
  if (serviceAccountToken !== undefined && serviceAccountToken !== '') {
    if (typeof serviceAccountToken !== 'string' || serviceAccountToken.length > REQUEST_LIMITS.token) {
      throw new RequestError('serviceAccountToken must be a string of at most 16 KiB');
    }
    req.serviceAccountToken = serviceAccountToken;
  }
  if (serviceAccountAnnotations !== undefined && serviceAccountAnnotations !== null) {
    if (!isObject(serviceAccountAnnotations)) throw new RequestError('serviceAccountAnnotations must be an object of strings');
    const entries = Object.entries(serviceAccountAnnotations);
    if (entries.length > REQUEST_LIMITS.annotations) throw new RequestError(`serviceAccountAnnotations has ${entries.length} entries; the limit is ${REQUEST_LIMITS.annotations}`);
    const annotations: Record<string, string> = {};
    for (const [k, v] of entries) {
      // Length limits per value are the annotation grammar's (it names the key); only the type is checked here.
      if (typeof v !== 'string') throw new RequestError(`serviceAccountAnnotations[${quote(k)}] must be a string`);
      annotations[k] = v;
    }
    if (entries.length > 0) req.serviceAccountAnnotations = annotations;
  }
  return req;
}

export type CacheKeyType = 'Image' | 'Registry' | 'Global';

export interface AuthConfig {
  username: string;
  password: string;
}

/**
 * The answer as the kubelet decodes it (strictly: no unknown fields). `auth` keys are registry hosts;
 * `cacheDurationSeconds` becomes a Go duration ("2700s"); 0 tells the kubelet not to cache.
 */
export function responseText(apiVersion: string, auth: Record<string, AuthConfig>, cacheKeyType: CacheKeyType, cacheDurationSeconds: number): string {
  const seconds = Math.max(0, Math.floor(cacheDurationSeconds));
  const body: Record<string, unknown> = { kind: 'CredentialProviderResponse', apiVersion, cacheKeyType, cacheDuration: `${seconds}s` };
  if (Object.keys(auth).length > 0) body.auth = auth;
  return JSON.stringify(body);
}
