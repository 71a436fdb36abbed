// Turns one AdmissionReview into its answer: the pure plan, then (outside dry runs) the Secrets it needs.
import { DenialError, type Budget, type EnsurePath, type PullSecretProvider } from '../pull-secrets/types.js';
import { withDeadline } from '../pull-secrets/util.js';
import type { PullSecretSpec } from '../acr/model.js';
import { describeError } from '../pull-secrets/util.js';
import { isObject } from '../util/is-object.js';
import { kindHandler } from './kinds.js';
import { planAdmission, type Plan, type ServingRules } from './plan.js';
import { allow, deny, type AdmissionRequest, type AdmissionReviewResponse } from './review.js';
import { podServiceAccountName } from './service-account-context.js';
import { isServiceAccount, planServiceAccount, type ServiceAccountPlan } from './service-accounts.js';

export type Result = 'patched' | 'unchanged' | 'denied' | 'error';
/** no-annotation: nothing to do; cached: Secrets already fresh; cold: a Secret was written; dry-run: none touched. */
export type PathLabel = 'no-annotation' | 'cached' | 'cold' | 'dry-run';

export interface Outcome {
  review: AdmissionReviewResponse;
  kind: string;
  result: Result;
  path: PathLabel;
  plan: Plan | ServiceAccountPlan;
  /** Internal detail for the log (never sent to the user); free of secret material. */
  error?: unknown;
}

/** A credential-helper Secret that could not be prepared for an admitted object (which was not refused for it). */
export interface HelperSecretFailure {
  namespace: string;
  /** The ServiceAccount the Secret is for: the one created, or the Pod's. */
  serviceAccount: string;
  secret: string;
  /** Safe to show (no secret material). */
  error: string;
}

export interface HandlerDeps {
  rules: () => ServingRules;
  secrets: PullSecretProvider;
  /** Reported (Event on the ServiceAccount, metric) by the caller; the admission itself is allowed. */
  onHelperSecretFailure?: (f: HelperSecretFailure) => void;
}

/**
 * The answer, synchronously whenever no Secret has to be written (nothing to do, a denial, a dry run, or every
 * Secret fresh in the cache): those are nearly every review, and a promise per review costs them measurably.
 */
export function handleAdmission(req: AdmissionRequest, budget: Budget, deps: HandlerDeps): Outcome | Promise<Outcome> {
  if (isServiceAccount(req.kind)) return handleServiceAccount(req, budget, deps);
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

async function ensureSecrets(
  req: AdmissionRequest,
  plan: Extract<Plan, { action: 'mutate' }>,
  kind: string,
  result: Result,
  budget: Budget,
  deps: HandlerDeps,
): Promise<Outcome> {
  try {
    const required = plan.bestEffort ? plan.specs.filter((s) => !plan.bestEffort!.has(s.name)) : plan.specs;
    const optional = plan.bestEffort ? plan.specs.filter((s) => plan.bestEffort!.has(s.name)) : [];
    const serviceAccount = () => (isObject(req.object) ? podServiceAccountName(req.object) : 'default');
    const [paths, bestEffort] = await Promise.all([
      // Answer before the API server gives up: a late answer is worth nothing, a clear timeout message is.
      withDeadline(
        Promise.all(required.map((s) => deps.secrets.ensure(s, budget))),
        budget,
        'obtaining registry credentials before the admission deadline; the cloud API may be slow or unreachable from the webhook: retry, and check the webhook log',
      ),
      ensureBestEffort(optional, serviceAccount, budget, deps),
    ]);
    const path: EnsurePath = paths.includes('cold') || bestEffort.cold ? 'cold' : 'cached';
    return { review: allow(req.uid, plan.patch, bestEffort.warnings), kind, result, path, plan };
  } catch (e) {
    if (e instanceof DenialError) {
      return { review: deny(req.uid, e.code, e.message), kind, result: 'denied', path: 'cold', plan, error: e };
    }
    const message = `acr-pull-webhook could not prepare the pull Secret (internal error; see the webhook log for request ${req.uid})`;
    return { review: deny(req.uid, 500, message), kind, result: 'error', path: 'cold', plan, error: e };
  }
}

/**
 * The credential helper's Secrets: prepared within the deadline, but a failure never refuses the object (the
 * helper never blocked anything). The reference stays in the patch: the leader keeps trying to create the
 * Secret, and the kubelet's pull retries find it once it exists. Warnings for kubectl; the caller records an
 * Event and counts it.
 */
async function ensureBestEffort(specs: PullSecretSpec[], serviceAccount: () => string, budget: Budget, deps: HandlerDeps): Promise<{ warnings: string[]; cold: boolean }> {
  if (specs.length === 0) return { warnings: [], cold: false };
  const settled = await Promise.allSettled(
    specs.map((s) => withDeadline(deps.secrets.ensure(s, budget), budget, `preparing pull Secret ${s.namespace}/${s.name} before the admission deadline`)),
  );
  const warnings: string[] = [];
  let cold = false;
  settled.forEach((r, i) => {
    cold ||= r.status === 'rejected' || r.value === 'cold';
    if (r.status === 'fulfilled') return;
    const spec = specs[i]!;
    deps.onHelperSecretFailure?.({ namespace: spec.namespace, serviceAccount: serviceAccount(), secret: spec.name, error: describeError(r.reason) });
    const text = `pull Secret ${spec.name} (acr-configuration) is not ready yet; the webhook retries: see its Events`;
    warnings.push(text.length < 120 ? text : `${text.slice(0, 116)}...`);
  });
  return { warnings, cold };
}

/** ServiceAccounts: validation of their ACR annotations, and the credential helper's Secrets at creation. */
function handleServiceAccount(req: AdmissionRequest, budget: Budget, deps: HandlerDeps): Outcome | Promise<Outcome> {
  const plan = planServiceAccount(req, deps.rules());
  const kind = 'ServiceAccount';
  if (plan.action === 'allow') return { review: allow(req.uid, undefined, plan.warnings), kind, result: 'unchanged', path: 'no-annotation', plan };
  if (plan.action === 'deny') return { review: deny(req.uid, plan.code, plan.message), kind, result: 'denied', path: 'no-annotation', plan };
  const result: Result = plan.patch.length > 0 ? 'patched' : 'unchanged';
  if (req.dryRun) return { review: allow(req.uid, plan.patch), kind, result, path: 'dry-run', plan };
  if (deps.secrets.fresh && plan.specs.every((s) => deps.secrets.fresh!(s))) return { review: allow(req.uid, plan.patch), kind, result, path: 'cached', plan };
  return ensureBestEffort(plan.specs, () => plan.serviceAccount.name, budget, deps).then(({ warnings, cold }) => ({
    review: allow(req.uid, plan.patch, warnings),
    kind,
    result,
    path: cold ? 'cold' : 'cached',
    plan,
  }));
}
