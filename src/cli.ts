#!/usr/bin/env node
// `acr-pull-webhook review -f <file>`: what the webhook would do with a Pod, workload, ImageCache or
// AdmissionReview, offline (no cluster, no cloud call). Exit 0 allowed, 1 denied, 2 unreadable input.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { planAdmission, servingRules, type ServingRules } from './admission/plan.js';
import { kindHandler } from './admission/kinds.js';
import { parseAdmissionReview, TransportError, type AdmissionRequest } from './admission/review.js';
import { isWorkload, validateWorkload } from './admission/workloads.js';
import { isServiceAccount, planServiceAccount } from './admission/service-accounts.js';
import { toServiceAccountInfo } from './kube/service-account-info.js';
import type { ServiceAccountInfo } from './pull-secrets/service-account-sync.js';
import { loadConfigFile, parseConfig } from './config/config.js';
import { isObject } from './util/is-object.js';

export interface ReviewReport {
  source: string;
  object: string;
  allowed: boolean;
  message?: string;
  warnings: string[];
  patch: unknown[];
  imagePullSecrets?: unknown;
}


/** Turns one document into the admission request the API server would send. */
export function requestFor(doc: unknown, defaultNamespace: string, index: number): AdmissionRequest {
  if (isObject(doc) && doc.kind === 'AdmissionReview') return parseAdmissionReview(doc);
  if (!isObject(doc) || typeof doc.apiVersion !== 'string' || typeof doc.kind !== 'string') {
    throw new TransportError(`document ${index + 1} is not a Kubernetes object (apiVersion and kind are required)`);
  }
  const [group, version] = doc.apiVersion.includes('/') ? doc.apiVersion.split('/', 2) : ['', doc.apiVersion];
  const meta = isObject(doc.metadata) ? doc.metadata : {};
  const clusterScoped = doc.kind === 'ImageCache';
  return {
    uid: `offline-${index + 1}`,
    kind: { group: group!, version: version!, kind: doc.kind },
    operation: 'CREATE',
    namespace: clusterScoped ? undefined : typeof meta.namespace === 'string' ? meta.namespace : defaultNamespace,
    name: typeof meta.name === 'string' ? meta.name : undefined,
    dryRun: true,
    object: doc,
  };
}

export function reviewDocument(req: AdmissionRequest, rules: ServingRules, source: string): ReviewReport {
  const object = `${req.kind.kind}${req.namespace ? ` ${req.namespace}/` : ' '}${req.name ?? '(generated name)'}`;
  if (isWorkload(req)) {
    const v = validateWorkload(req, rules);
    if (v.action === 'deny') return { source, object, allowed: false, message: v.message, warnings: [], patch: [] };
    return { source, object, allowed: true, warnings: v.action === 'allow' ? v.warnings : [], patch: [] };
  }
  if (isServiceAccount(req.kind)) {
    const sa = planServiceAccount({ ...req, dryRun: true }, rules);
    if (sa.action === 'deny') return { source, object, allowed: false, message: sa.message, warnings: [], patch: [] };
    return { source, object, allowed: true, message: 'annotations accepted', warnings: sa.action === 'allow' ? (sa.warnings ?? []) : [], patch: [] };
  }
  // Offline means dry run: the plan is the whole answer, no Secret is written.
  const plan = planAdmission({ ...req, dryRun: true }, rules);
  if (plan.action === 'deny') return { source, object, allowed: false, message: plan.message, warnings: [], patch: [] };
  if (plan.action === 'allow') return { source, object, allowed: true, message: `unchanged (${plan.reason})`, warnings: plan.warnings ?? [], patch: [] };
  const spec = isObject(req.object) && isObject(req.object.spec) ? req.object.spec : {};
  const current = Array.isArray(spec.imagePullSecrets) ? spec.imagePullSecrets : [];
  const ref = (s: { namespace: string; name: string }) => (kindHandler(req.kind)?.name === 'ImageCache' ? `${s.namespace}:${s.name}` : { name: s.name });
  const added = plan.specs.map(ref).filter((r) => !current.some((c) => JSON.stringify(c) === JSON.stringify(r)));
  return {
    source,
    object,
    allowed: true,
    message: `adds pull Secret(s) ${plan.specs.map((s) => `${s.namespace}/${s.name}`).join(', ')}`,
    warnings: [],
    patch: plan.patch,
    imagePullSecrets: [...current, ...added],
  };
}

function usage(): never {
  console.error('usage: acr-pull-webhook review -f <file|-> [--config config.yaml] [--namespace default] [--output text|json]');
  process.exit(2);
}

export function main(argv: string[]): number {
  if (argv[0] !== 'review') usage();
  let file: string | undefined;
  let configFile: string | undefined;
  let namespace = 'default';
  let output = 'text';
  for (let i = 1; i < argv.length; i++) {
    const next = () => argv[++i] ?? usage();
    const a = argv[i];
    if (a === '-f' || a === '--filename') file = next();
    else if (a === '--config') configFile = next();
    else if (a === '-n' || a === '--namespace') namespace = next();
    else if (a === '-o' || a === '--output') output = next();
    else usage();
  }
  if (!file || (output !== 'text' && output !== 'json')) usage();

  const ctx = { ownNamespace: process.env.POD_NAMESPACE || 'acr-pull-webhook', regionFromEnv: process.env.ALIBABA_CLOUD_REGION_ID };
  let reports: ReviewReport[];
  try {
    const text = readFileSync(file === '-' ? 0 : file, 'utf8');
    const docs = parseAllDocuments(text);
    const requests: { r: AdmissionRequest; i: number }[] = [];
    docs.forEach((d, i) => {
      if (d.errors.length > 0) throw new TransportError(`document ${i + 1}: ${d.errors[0]!.message.split('\n')[0]}`);
      const value: unknown = d.toJS();
      if (value !== null && value !== undefined) requests.push({ r: requestFor(value, namespace, i), i });
    });
    // ServiceAccounts in the same input (a chart's, say) lend their annotations to the Pods that use them.
    const accounts = new Map<string, ServiceAccountInfo>();
    for (const { r } of requests) {
      const sa = isServiceAccount(r.kind) && isObject(r.object) ? toServiceAccountInfo({ ...r.object, metadata: { ...(isObject(r.object.metadata) ? r.object.metadata : {}), namespace: r.namespace } }) : undefined;
      if (sa) accounts.set(`${sa.namespace}/${sa.name}`, sa);
    }
    const config = configFile ? loadConfigFile(configFile, ctx) : parseConfig({}, ctx, 'defaults');
    const rules = servingRules(config, ctx.ownNamespace, undefined, undefined, { serviceAccount: (ns, name) => accounts.get(`${ns}/${name}`) });
    reports = requests.map(({ r, i }) => reviewDocument(r, rules, `${file}#${i + 1}`));
    if (reports.length === 0) throw new TransportError('no documents found');
  } catch (e) {
    console.error(`acr-pull-webhook review: ${(e as Error).message}`);
    return 2;
  }

  if (output === 'json') console.log(JSON.stringify(reports, null, 2));
  else {
    for (const r of reports) {
      console.log(`${r.object}: ${r.allowed ? 'ALLOWED' : 'DENIED'}${r.message ? `: ${r.message}` : ''}`);
      for (const w of r.warnings) console.log(`  warning: ${w}`);
      if (r.patch.length > 0) console.log(`  patch: ${JSON.stringify(r.patch)}`);
      if (r.imagePullSecrets !== undefined) console.log(`  imagePullSecrets: ${JSON.stringify(r.imagePullSecrets)}`);
    }
  }
  return reports.every((r) => r.allowed) ? 0 : 1;
}

// Run only as a program, not when imported by tests.
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/cli.js')) process.exit(main(process.argv.slice(2)));
