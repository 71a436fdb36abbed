// The AdmissionReview envelope, field by field: what is read from a request (and what an odd value becomes), the
// exact transport errors, and the exact shape of allow and deny responses.
import { describe, expect, it } from 'vitest';
import { allow, deny, parseAdmissionReview, TransportError } from '../../src/admission/review.js';

const base = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' };
const withRequest = (request: unknown) => ({ ...base, request });

describe('parseAdmissionReview', () => {
  it('reads every field it uses from a full request', () => {
    const object = { metadata: { name: 'p' } };
    const oldObject = { metadata: { name: 'p', labels: { a: 'b' } } };
    expect(
      parseAdmissionReview(
        withRequest({
          uid: 'u-1',
          kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
          operation: 'UPDATE',
          subResource: 'scale',
          namespace: 'team-a',
          name: 'web',
          dryRun: true,
          object,
          oldObject,
          userInfo: { username: 'x' },
        }),
      ),
    ).toStrictEqual({
      uid: 'u-1',
      kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      operation: 'UPDATE',
      subResource: 'scale',
      namespace: 'team-a',
      name: 'web',
      dryRun: true,
      object,
      oldObject,
    });
  });

  it('a minimal request: empty kind and operation, no sub-resource, namespace or name, not a dry run, no old object', () => {
    expect(parseAdmissionReview(withRequest({ uid: 'u-2' }))).toStrictEqual({
      uid: 'u-2',
      kind: { group: '', version: '', kind: '' },
      operation: '',
      subResource: undefined,
      namespace: undefined,
      name: undefined,
      dryRun: false,
      object: undefined,
    });
  });

  it('odd values: empty strings count as absent, non-strings are ignored, dryRun only when true, null oldObject is none', () => {
    const req = parseAdmissionReview(
      withRequest({ uid: 'u-3', kind: { kind: 'Pod' }, operation: 7, subResource: '', namespace: '', name: '', dryRun: 'true', oldObject: null }),
    );
    expect(req).toStrictEqual({
      uid: 'u-3',
      kind: { group: '', version: '', kind: 'Pod' },
      operation: '',
      subResource: undefined,
      namespace: undefined,
      name: undefined,
      dryRun: false,
      object: undefined,
    });
    expect('oldObject' in req).toBe(false);
    const typed = parseAdmissionReview(withRequest({ uid: 'u-4', kind: 'Pod', subResource: 5, namespace: 5, name: 5 }));
    expect(typed.kind).toEqual({ group: '', version: '', kind: '' });
    expect([typed.subResource, typed.namespace, typed.name]).toEqual([undefined, undefined, undefined]);
    expect(parseAdmissionReview(withRequest({ uid: 'u-5', kind: { group: 1, version: 2, kind: 3 } })).kind).toEqual({ group: '1', version: '2', kind: '3' });
    // A kind object without its kind (or with null): '' like the other two fields.
    expect(parseAdmissionReview(withRequest({ uid: 'u-6', kind: { group: 'apps', version: 'v1' } })).kind).toEqual({ group: 'apps', version: 'v1', kind: '' });
    expect(parseAdmissionReview(withRequest({ uid: 'u-7', kind: { group: 'apps', version: 'v1', kind: null } })).kind).toEqual({ group: 'apps', version: 'v1', kind: '' });
  });

  it.each([
    [null, 'body must be a JSON object (an AdmissionReview)'],
    ['AdmissionReview', 'body must be a JSON object (an AdmissionReview)'],
    [[base], 'body must be a JSON object (an AdmissionReview)'],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'Admissionreview', request: { uid: 'u' } }, 'kind must be "AdmissionReview"'],
    [{ kind: 'AdmissionReview', request: { uid: 'u' } }, 'apiVersion must be "admission.k8s.io/v1" (register the webhook with admissionReviewVersions: [v1])'],
    [{ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'u' } }, 'apiVersion must be "admission.k8s.io/v1" (register the webhook with admissionReviewVersions: [v1])'],
    [base, 'request is missing or not an object'],
    [withRequest('u'), 'request is missing or not an object'],
    [withRequest({}), 'request.uid is missing or not a string'],
    [withRequest({ uid: '' }), 'request.uid is missing or not a string'],
    [withRequest({ uid: 42 }), 'request.uid is missing or not a string'],
  ])('refuses %j: %s', (body, message) => {
    let caught: unknown;
    try {
      parseAdmissionReview(body);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(TransportError);
    expect((caught as TransportError).name).toBe('TransportError');
    expect((caught as TransportError).message).toBe(message);
  });
});

describe('allow and deny', () => {
  it('allow: a patch travels base64-encoded with patchType JSONPatch; warnings when there are any', () => {
    const patch = [{ op: 'add' as const, path: '/spec/imagePullSecrets', value: [{ name: 'acr-pull-0' }] }];
    expect(allow('u', patch, ['w1'])).toStrictEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: 'u',
        allowed: true,
        patch: 'W3sib3AiOiJhZGQiLCJwYXRoIjoiL3NwZWMvaW1hZ2VQdWxsU2VjcmV0cyIsInZhbHVlIjpbeyJuYW1lIjoiYWNyLXB1bGwtMCJ9XX1d',
        patchType: 'JSONPatch',
        warnings: ['w1'],
      },
    });
    // The same array encodes the same way the second time (memoized per array).
    expect(allow('v', patch).response.patch).toBe('W3sib3AiOiJhZGQiLCJwYXRoIjoiL3NwZWMvaW1hZ2VQdWxsU2VjcmV0cyIsInZhbHVlIjpbeyJuYW1lIjoiYWNyLXB1bGwtMCJ9XX1d');
  });

  it('allow: no patch, an empty patch and no warnings leave those fields out', () => {
    const bare = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u', allowed: true } };
    expect(allow('u')).toStrictEqual(bare);
    expect(allow('u', [], [])).toStrictEqual(bare);
  });

  it.each([
    [400, 'BadRequest'],
    [403, 'Forbidden'],
    [500, 'InternalError'],
    [503, 'ServiceUnavailable'],
    [504, 'Timeout'],
    [422, 'BadRequest'],
  ])('deny %i carries reason %s', (code, reason) => {
    expect(deny('u', code, 'why')).toStrictEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'u', allowed: false, status: { code, message: 'why', reason } },
    });
  });
});
