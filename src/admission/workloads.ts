// Validation of workload pod templates: the same rules as the Pod path, applied when the user runs
// `kubectl apply` on a Deployment, so a mistake is reported there instead of as a FailedCreate event later.
import { parseAcrAnnotations } from '../acr/annotations.js';
import { registryHost } from '../acr/registry-hosts.js';
import { planAdmission, type ServingRules } from './plan.js';
import type { AdmissionRequest } from './review.js';
import { isObject } from '../util/is-object.js';

const WORKLOADS: Record<string, { group: string; templatePath: string[] }> = {
  Deployment: { group: 'apps', templatePath: ['spec', 'template'] },
  StatefulSet: { group: 'apps', templatePath: ['spec', 'template'] },
  DaemonSet: { group: 'apps', templatePath: ['spec', 'template'] },
  ReplicaSet: { group: 'apps', templatePath: ['spec', 'template'] },
  Job: { group: 'batch', templatePath: ['spec', 'template'] },
  CronJob: { group: 'batch', templatePath: ['spec', 'jobTemplate', 'spec', 'template'] },
};

export type Validation =
  | { action: 'allow'; warnings: string[] }
  | { action: 'deny'; code: 400 | 403; message: string }
  | { action: 'skip' };

/** kubectl prints warnings verbatim; the API server wants each under 120 characters. */
const warning = (text: string) => (text.length < 120 ? text : `${text.slice(0, 116)}...`);

export function isWorkload(req: AdmissionRequest): boolean {
  const w = WORKLOADS[req.kind.kind];
  return w !== undefined && w.group === req.kind.group && req.kind.version === 'v1';
}

export function validateWorkload(req: AdmissionRequest, rules: ServingRules): Validation {
  const w = WORKLOADS[req.kind.kind];
  if (!w || w.group !== req.kind.group || req.subResource || (req.operation !== 'CREATE' && req.operation !== 'UPDATE')) return { action: 'skip' };
  const object = req.object;
  if (!isObject(object)) return { action: 'skip' };
  const meta = isObject(object.metadata) ? object.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : '(unnamed)';
  const namespace = req.namespace ?? (typeof meta.namespace === 'string' ? meta.namespace : 'default');
  const who = `${req.kind.kind} ${namespace}/${name}`;
  let template: unknown = object;
  for (const key of w.templatePath) template = isObject(template) ? template[key] : undefined;
  const fieldPath = w.templatePath.join('.');
  if (!isObject(template)) return { action: 'allow', warnings: [] };
  const templateMeta = isObject(template.metadata) ? template.metadata : {};

  const warnings: string[] = [];
  const onTemplate = parseAcrAnnotations(templateMeta.annotations).kind !== 'none';
  const onWorkload = parseAcrAnnotations(meta.annotations).kind !== 'none';
  if (onWorkload && !onTemplate) {
    warnings.push(warning(`${req.kind.kind} has ACR annotations on its own metadata: move them to ${fieldPath}.metadata.annotations`));
  }

  // The Pod this template will create, checked as if it were being created now (a dry run: nothing written).
  const plan = planAdmission(
    {
      uid: req.uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      operation: 'CREATE',
      namespace,
      dryRun: true,
      object: { metadata: templateMeta, spec: template.spec },
    },
    rules,
  );
  if (plan.action === 'deny') {
    return { action: 'deny', code: plan.code, message: `${who}: ${fieldPath}.metadata.annotations: ${plan.message}` };
  }
  if (plan.action === 'allow' && plan.warnings) warnings.push(...plan.warnings);
  if (plan.action === 'mutate') {
    if (plan.patch.length === 0) {
      warnings.push(warning(`${fieldPath}.spec.imagePullSecrets already lists ${plan.specs.map((s) => s.name).join(', ')}, which the webhook manages`));
    }
    const hosts = new Set(imagesOf(template.spec).map(registryHost));
    for (const spec of plan.specs) {
      for (const r of spec.binding.registries) {
        if (r.kind === 'instance' && r.domains && !r.domains.some((d) => hosts.has(d))) {
          warnings.push(warning(`no container image is on a domain of ACR instance ${r.instanceId} (${r.domains.join(', ')})`));
        }
      }
    }
  }
  return { action: 'allow', warnings };
}

function imagesOf(spec: unknown): string[] {
  if (!isObject(spec)) return [];
  const out: string[] = [];
  for (const field of ['initContainers', 'containers']) {
    const list = spec[field];
    if (Array.isArray(list)) for (const c of list) if (isObject(c) && typeof c.image === 'string') out.push(c.image);
  }
  return out;
}
