// Turns one AdmissionReview into its answer: the pure plan, then (outside dry runs) the Secrets it needs.
import { DenialError, type Budget, type EnsurePath, type PullSecretProvider } from '../pull-secrets/types.js';
import { Progress } from '../pull-secrets/progress.js';
import { describeError, withDeadline } from '../pull-secrets/util.js';
import type { PullSecretSpec } from '../acr/model.js';
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
  /** Registry discovery (src/cloud/discovery.ts): consulted when an image may be on an instance not seen yet. */
  discovery?: { refreshForMiss(budget: Budget): Promise<boolean> };
  /** Reported (Event on the ServiceAccount, metric) by the caller; the admission itself is allowed. */
  onHelperSecretFailure?: (f: HelperSecretFailure) => void;
}

/** When no step recorded anything (a provider that does not report progress). */
const DEADLINE_WHAT =
  'obtaining registry credentials before the admission deadline; the cloud API may be slow or unreachable from the webhook: retry, and check the webhook log';

/**
 * `ensure` bounded by the review's deadline, whose one owner this is: a late answer is worth nothing, a clear
 * timeout message is. It names the step the Secret was still waiting on, which the Secret manager and the
 * credential chain record (AssumeRole of which role, which registry call, or the Secret write).
 */
function ensureInTime(deps: HandlerDeps, spec: PullSecretSpec, budget: Budget): Promise<EnsurePath> {
  const progress = new Progress();
  return withDeadline(deps.secrets.ensure(spec, { ...budget, progress }), budget, () => progress.timedOut(DEADLINE_WHAT));
}

/**
 * The answer, synchronously whenever no Secret has to be written (nothing to do, a denial, a dry run, or every
 * Secret fresh in the cache): those are nearly every review, and a promise per review costs them measurably.
 */
export function handleAdmission(req: AdmissionRequest, budget: Budget, deps: HandlerDeps): Outcome | Promise<Outcome> {
  if (isServiceAccount(req.kind)) return handleServiceAccount(req, budget, deps);
  const plan = planAdmission(req, deps.rules());
  // Only images on an Enterprise default domain of a discovery region that no known instance has get here: the
  // refresh is shared and rate limited (discovery.ts), so a Pod of a foreign instance waits at most once per interval.
  if (plan.action !== 'deny' && plan.undiscovered && deps.discovery) {
    return deps.discovery.refreshForMiss(budget).then((refreshed) => decide(req, refreshed ? planAdmission(req, deps.rules()) : plan, budget, deps));
  }
  return decide(req, plan, budget, deps);
}

function decide(req: AdmissionRequest, plan: Plan, budget: Budget, deps: HandlerDeps): Outcome | Promise<Outcome> {
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

/**
 * Three kinds of Secret may be at stake. Those the annotations ask for must be there, or the object is refused.
 * Those of registries found by discovery (`optional`) are dropped from the patch when they cannot be obtained, as
 * ECI would create the Pod and let the pull decide. Those of the credential helper (`bestEffort`) never refuse
 * the object and stay referenced: the leader keeps trying and the kubelet's pull retries find them.
 */
async function ensureSecrets(
  req: AdmissionRequest,
  plan: Extract<Plan, { action: 'mutate' }>,
  kind: string,
  result: Result,
  budget: Budget,
  deps: HandlerDeps,
): Promise<Outcome> {
  const { optional, bestEffort } = plan;
  try {
    const settled = await Promise.allSettled(plan.specs.map((s) => ensureInTime(deps, s, budget)));
    const skipped: PullSecretSpec[] = [];
    let firstSkipError: unknown;
    const warnings: string[] = [];
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      const spec = plan.specs[i]!;
      if (bestEffort?.has(spec.name)) {
        warnings.push(helperFailure(spec, isObject(req.object) ? podServiceAccountName(req.object) : 'default', r.reason, deps));
        return;
      }
      if (!optional?.has(spec.name)) throw r.reason;
      skipped.push(spec);
      firstSkipError ??= r.reason;
    });
    const path: EnsurePath = settled.some((r) => r.status === 'rejected' || r.value === 'cold') ? 'cold' : 'cached';
    if (skipped.length > 0) return withoutSkipped(req, plan, kind, skipped, firstSkipError, path, warnings);
    return { review: allow(req.uid, plan.patch, warnings), kind, result, path, plan };
  } catch (e) {
    if (e instanceof DenialError) {
      return { review: deny(req.uid, e.code, e.message), kind, result: 'denied', path: 'cold', plan, error: e };
    }
    const message = `acr-pull-webhook could not prepare the pull Secret (internal error; see the webhook log for request ${req.uid})`;
    return { review: deny(req.uid, 500, message), kind, result: 'error', path: 'cold', plan, error: e };
  }
}

/**
 * Admits without the Secrets of registries found by discovery that could not be served: the object may pull public
 * images from those hosts, and ECI would not have refused it either. A warning says so; the log has the reason.
 */
function withoutSkipped(
  req: AdmissionRequest,
  plan: Extract<Plan, { action: 'mutate' }>,
  kind: string,
  skipped: PullSecretSpec[],
  error: unknown,
  path: EnsurePath,
  warnings: string[],
): Outcome {
  const kept = plan.specs.filter((s) => !skipped.includes(s));
  const handler = kindHandler(req.kind)!;
  const patch = kept.length > 0 ? handler.patch(req.object as Record<string, unknown>, kept) : [];
  const hosts = [...new Set(skipped.flatMap((s) => s.binding.registries.flatMap((r) => (r.kind === 'instance-name' ? [] : (r.domains ?? [r.kind === 'instance' ? r.instanceId : r.region])))))];
  const warning = `no pull Secret for ${hosts.join(', ')} (found by discovery): no registry token; see the webhook log`.slice(0, 119);
  return { review: allow(req.uid, patch, [...warnings, warning]), kind, result: patch.length > 0 ? 'patched' : 'unchanged', path, plan, error };
}

/** Reports a credential-helper Secret that is not ready (the caller records an Event and counts it); the warning. */
function helperFailure(spec: PullSecretSpec, serviceAccount: string, reason: unknown, deps: HandlerDeps): string {
  deps.onHelperSecretFailure?.({ namespace: spec.namespace, serviceAccount, secret: spec.name, error: describeError(reason) });
  const text = `pull Secret ${spec.name} (acr-configuration) is not ready yet; the webhook retries: see its Events`;
  return text.length < 120 ? text : `${text.slice(0, 116)}...`;
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
  // The Secret is made before the answer; a failure never refuses the ServiceAccount (the helper's never did).
  return Promise.allSettled(plan.specs.map((s) => ensureInTime(deps, s, budget))).then((settled) => {
    const warnings: string[] = [];
    settled.forEach((r, i) => {
      if (r.status === 'rejected') warnings.push(helperFailure(plan.specs[i]!, plan.serviceAccount.name, r.reason, deps));
    });
    const path: PathLabel = settled.some((r) => r.status === 'rejected' || r.value === 'cold') ? 'cold' : 'cached';
    return { review: allow(req.uid, plan.patch, warnings), kind, result, path, plan };
  });
}
