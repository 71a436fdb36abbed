// Turns one AdmissionReview into its answer: the pure plan, then (outside dry runs) the Secrets it needs.
import { DenialError, type Budget, type EnsurePath, type PullSecretProvider } from '../pull-secrets/types.js';
import { Progress } from '../pull-secrets/progress.js';
import { withDeadline } from '../pull-secrets/util.js';
import type { PullSecretSpec } from '../acr/model.js';
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
  /** Registry discovery (src/cloud/discovery.ts): consulted when an image may be on an instance not seen yet. */
  discovery?: { refreshForMiss(budget: Budget): Promise<boolean> };
}

/**
 * The answer, synchronously whenever no Secret has to be written (nothing to do, a denial, a dry run, or every
 * Secret fresh in the cache): those are nearly every review, and a promise per review costs them measurably.
 */
export function handleAdmission(req: AdmissionRequest, budget: Budget, deps: HandlerDeps): Outcome | Promise<Outcome> {
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
  const optional = plan.optional;
  try {
    // The one owner of the admission's deadline: answer before the API server gives up (a late answer is worth
    // nothing), naming the step that was still waiting, which the Secret manager and the credential chain record.
    const progress = new Progress();
    const tracked: Budget = { ...budget, progress };
    const settled = await withDeadline(
      Promise.allSettled(plan.specs.map((s) => deps.secrets.ensure(s, tracked))),
      budget,
      () => progress.timedOut(NOTHING_RECORDED),
    );
    const skipped: PullSecretSpec[] = [];
    let firstSkipError: unknown;
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      const spec = plan.specs[i]!;
      if (!optional?.has(spec.name)) throw r.reason;
      skipped.push(spec);
      firstSkipError ??= r.reason;
    });
    const path: EnsurePath = settled.some((r) => r.status === 'fulfilled' && r.value === 'cold') ? 'cold' : 'cached';
    if (skipped.length > 0) return withoutSkipped(req, plan, kind, skipped, firstSkipError, path);
    return { review: allow(req.uid, plan.patch), kind, result, path, plan };
  } catch (e) {
    // Only registries found by discovery are at stake: admit as ECI would, without their Secrets.
    if (optional && plan.specs.every((s) => optional.has(s.name))) return withoutSkipped(req, plan, kind, plan.specs, e, 'cold');
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
): Outcome {
  const kept = plan.specs.filter((s) => !skipped.includes(s));
  const handler = kindHandler(req.kind)!;
  const patch = kept.length > 0 ? handler.patch(req.object as Record<string, unknown>, kept) : [];
  const hosts = [...new Set(skipped.flatMap((s) => s.binding.registries.flatMap((r) => (r.kind === 'instance-name' ? [] : (r.domains ?? [r.kind === 'instance' ? r.instanceId : r.region])))))];
  const warning = `no pull Secret for ${hosts.join(', ')} (found by discovery): no registry token; see the webhook log`.slice(0, 119);
  return { review: allow(req.uid, patch, [warning]), kind, result: patch.length > 0 ? 'patched' : 'unchanged', path, plan, error };
}
