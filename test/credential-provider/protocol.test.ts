// The kubelet's request as parseRequest reads it (src/credential-provider/protocol.ts): the API versions it
// accepts, what is not a request object, and each bound to the exact size (the limit itself passes, one more is
// refused with the message). decide.test.ts has the common cases and the response.
import { beforeEach, describe, expect, it, vi } from 'vitest';

type Protocol = typeof import('../../src/credential-provider/protocol.js');
let parseRequest: Protocol['parseRequest'];
let RequestError: Protocol['RequestError'];

beforeEach(async () => {
  // Loaded per test: the set of API versions is built when the module loads.
  vi.resetModules();
  ({ parseRequest, RequestError } = await import('../../src/credential-provider/protocol.js'));
});

const V1 = 'credentialprovider.kubelet.k8s.io/v1';
const base = { apiVersion: V1, kind: 'CredentialProviderRequest', image: 'a.io/b' };
const text = (over: Record<string, unknown>) => JSON.stringify({ ...base, ...over });

/** The RequestError's message for `input`, or 'accepted'. */
function refusal(input: string): string {
  try {
    parseRequest(input);
    return 'accepted';
  } catch (e) {
    expect(e).toBeInstanceOf(RequestError);
    return (e as Error).message;
  }
}

describe('parseRequest', () => {
  it('accepts v1, v1beta1 and v1alpha1 and keeps the version for the answer', () => {
    for (const apiVersion of [V1, 'credentialprovider.kubelet.k8s.io/v1beta1', 'credentialprovider.kubelet.k8s.io/v1alpha1']) {
      expect(parseRequest(text({ apiVersion }))).toEqual({ apiVersion, image: 'a.io/b' });
    }
  });

  it('names an apiVersion that is not a string as the empty one', () => {
    expect(refusal(text({ apiVersion: 5 }))).toBe(`unsupported apiVersion "": set apiVersion ${V1} in the kubelet's CredentialProviderConfig`);
    expect(refusal(text({ apiVersion: '' }))).toBe(`unsupported apiVersion "": set apiVersion ${V1} in the kubelet's CredentialProviderConfig`);
  });

  it('refuses JSON that is not an object: null, a string, a number, a list', () => {
    for (const input of ['null', '"CredentialProviderRequest"', '5', '[]']) expect(refusal(input)).toBe('the request on stdin is not a JSON object');
  });

  it('takes a request of exactly 1 MiB, and refuses one character more', () => {
    const body = text({});
    const padded = body + ' '.repeat((1 << 20) - body.length);
    expect(padded.length).toBe(1048576);
    expect(parseRequest(padded)).toEqual({ apiVersion: V1, image: 'a.io/b' });
    expect(refusal(`${padded} `)).toBe('the request is 1048577 bytes; the limit is 1048576');
  });

  it('refuses an empty image; takes one of exactly 4096 characters, and refuses 4097', () => {
    expect(refusal(text({ image: '' }))).toBe('the request has no image');
    const image = `a.io/${'x'.repeat(4091)}`;
    expect(image.length).toBe(4096);
    expect(parseRequest(text({ image }))).toEqual({ apiVersion: V1, image });
    expect(refusal(text({ image: `${image}x` }))).toBe('the image reference is 4097 characters long; the limit is 4096');
  });

  it('takes a ServiceAccount token of exactly 16 KiB, and refuses one character more', () => {
    const token = 't'.repeat(16384);
    expect(parseRequest(text({ serviceAccountToken: token }))).toEqual({ apiVersion: V1, image: 'a.io/b', serviceAccountToken: token });
    expect(refusal(text({ serviceAccountToken: `${token}t` }))).toBe('serviceAccountToken must be a string of at most 16 KiB');
  });

  it('reads null annotations as none, and refuses annotations that are not an object (a string, a list)', () => {
    expect(parseRequest(text({ serviceAccountAnnotations: null }))).toEqual({ apiVersion: V1, image: 'a.io/b' });
    for (const serviceAccountAnnotations of ['abc', ['a'], [], 5]) {
      expect(refusal(text({ serviceAccountAnnotations }))).toBe('serviceAccountAnnotations must be an object of strings');
    }
  });

  it('takes exactly 64 annotations, and refuses 65', () => {
    const annotations = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v']));
    expect(parseRequest(text({ serviceAccountAnnotations: annotations }))).toEqual({ apiVersion: V1, image: 'a.io/b', serviceAccountAnnotations: annotations });
    expect(refusal(text({ serviceAccountAnnotations: { ...annotations, k64: 'v' } }))).toBe('serviceAccountAnnotations has 65 entries; the limit is 64');
  });
});
