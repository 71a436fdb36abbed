// Turns one AdmissionReview into its answer: the pure plan, then (outside dry runs) the Secrets it needs.
import { DenialError, type Budget, type EnsurePath, type PullSecretProvider } from '../pull-secrets/types.js';
import { Progress } from '../pull-secrets/progress.js';
import { withDeadline } from '../pull-secrets/util.js';
import { kindHandler } from './kinds.js';
import { planAdmission, type Plan, type ServingRules } from './plan.js';
import { allow, deny, type AdmissionRequest, type AdmissionReviewResponse } from './review.js';

export type Result = 'patched' | 'unchanged' | 'denied' | 'error';
/** no-annotation: nothing to do; cached: Secrets already fresh; cold: a Secret was written; dry-run: none touched. */
export type PathLabel = 'no-annotation' | 'cached' | 'cold' | 'dry-run';

export interface Outcome {
  review: AdmissionReviewResponse;
  kind: string;
  result: Result;
  path: PathLabel;
  plan: Plan;
  /** Internal detail for the log (never sent to the user); free of secret material. */
  error?: unknown;
}

export interface HandlerDeps {
  rules: () => ServingRules;
  secrets: PullSecretProvider;
}

/**
 * The answer, synchronously whenever no Secret has to be written (nothing to do, a denial, a dry run, or every
 * Secret fresh in the cache): those are nearly every review, and a promise per review costs them measurably.
 */
export function handleAdmission(req: AdmissionRequest, budget: Budget, deps: HandlerDeps): Outcome | Promise<Outcome> {
  const plan = planAdmission(req, deps.rules());
  // A closed set for metrics and logs: the request's own kind string is untrusted and unbounded.
  const kind = kindHandler(req.kind)?.name ?? 'other';
  if (plan.action === 'allow') {
    return { review: allow(req.uid, undefined, plan.warnings), kind, result: 'unchanged', path: 'no-annotation', plan };
  }
  if (plan.action === 'deny') {
    return { review: deny(req.uid, plan.code, plan.message), kind, result: 'denied', path: 'no-annotation', plan };
  }
  const result: Result = plan.patch.length > 0 ? 'patched' : 'unchanged';
  // sideEffects: NoneOnDryRun: a dry run gets the same patch (the names are deterministic) and touches nothing.
  if (req.dryRun) return { review: allow(req.uid, plan.patch), kind, result, path: 'dry-run', plan };
  // Warm path: every Secret already fresh in the cache, decided synchronously (no promise, no timer).
  if (deps.secrets.fresh && plan.specs.every((s) => deps.secrets.fresh!(s))) {
    return { review: allow(req.uid, plan.patch), kind, result, path: 'cached', plan };
  }
  return ensureSecrets(req, plan, kind, result, budget, deps);
}

/** When no step recorded anything (a provider that does not report progress). */
const NOTHING_RECORDED =
  'obtaining registry credentials before the admission deadline; the cloud API may be slow or unreachable from the webhook: retry, and check the webhook log';

async function ensureSecrets(
  req: AdmissionRequest,
  plan: Extract<Plan, { action: 'mutate' }>,
  kind: string,
  result: Result,
  budget: Budget,
  deps: HandlerDeps,
): Promise<Outcome> {
  try {
    // The one owner of the admission's deadline: answer before the API server gives up (a late answer is worth
    // nothing), naming the step that was still waiting, which the Secret manager and the credential chain record.
    const progress = new Progress();
    const tracked: Budget = { ...budget, progress };
    const paths = await withDeadline(
      Promise.all(plan.specs.map((s) => deps.secrets.ensure(s, tracked))),
      budget,
      () => progress.timedOut(NOTHING_RECORDED),
    );
    const path: EnsurePath = paths.includes('cold') ? 'cold' : 'cached';
    return { review: allow(req.uid, plan.patch), kind, result, path, plan };
  } catch (e) {
    if (e instanceof DenialError) {
      return { review: deny(req.uid, e.code, e.message), kind, result: 'denied', path: 'cold', plan, error: e };
    }
    const message = `acr-pull-webhook could not prepare the pull Secret (internal error; see the webhook log for request ${req.uid})`;
    return { review: deny(req.uid, 500, message), kind, result: 'error', path: 'cold', plan, error: e };
  }
}
