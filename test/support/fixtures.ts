// Shared helpers for tests that replay the AdmissionReview fixtures.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import jsonpatch from 'fast-json-patch';
import type { AdmissionReviewResponse } from '../../src/admission/review.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'admission-review');

export function fixtureText(name: string): string {
  return readFileSync(join(FIXTURES, name.includes('.') ? name : `${name}.json`), 'utf8');
}

export function fixture(name: string): { apiVersion: string; kind: string; request: Record<string, any> } {
  return JSON.parse(fixtureText(name));
}

/** The JSON Patch of a response, decoded; [] when there is none. */
export function decodePatch(review: AdmissionReviewResponse): jsonpatch.Operation[] {
  const { patch, patchType } = review.response;
  if (patch === undefined) {
    if (patchType !== undefined) throw new Error('patchType without patch');
    return [];
  }
  if (patchType !== 'JSONPatch') throw new Error('patch without patchType JSONPatch');
  return JSON.parse(Buffer.from(patch, 'base64').toString('utf8'));
}

/**
 * Applies a patch the way the API server does: validated, all or nothing, and an `add` under a missing
 * parent fails (fast-json-patch's validate flag) — so a wrong patch fails the test, not the cluster.
 */
export function applyAsApiServer<T>(object: T, ops: jsonpatch.Operation[]): T {
  const copy = structuredClone(object);
  const error = jsonpatch.validate(ops, copy);
  if (error) throw error;
  return jsonpatch.applyPatch(copy, ops, true, false).newDocument;
}
