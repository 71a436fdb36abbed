// `acr-pull-webhook review -f <file>`: what the webhook would do with a Pod, workload, ImageCache or
// AdmissionReview, offline (no cluster, no cloud call). Exit 0 allowed, 1 denied, 2 unreadable input.
// Importable (tests, other tools); the installed program is bin.ts.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseAllDocuments, stringify as stringifyYaml } from 'yaml';
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

export const USAGE = `usage: acr-pull-webhook review -f <file|-> [-f <file> ...] [--config <file>] [-n <namespace>] [-o text|json|yaml]

Shows what the webhook would do with Pods, workloads, ImageCaches or AdmissionReviews (YAML or JSON, several
documents per file), offline: no cluster, no cloud call.

options:
  -f, --filename <file>    a file to review, "-" for standard input; repeat -f for several files
      --config <file>      the webhook's configuration file (policy, registries, defaultRegion)
  -n, --namespace <name>   namespace of objects that name none (default: default)
  -o, --output <format>    text (default), json or yaml
  -h, --help               this help

Instance IDs without a region prefix take the configuration's defaultRegion, else ALIBABA_CLOUD_REGION_ID, as in
the webhook; with neither they are denied.

exit code: 0 everything allowed, 1 something denied, 2 unreadable input or a usage error`;

const OPTIONS = {
  filename: { type: 'string', short: 'f', multiple: true },
  config: { type: 'string' },
  namespace: { type: 'string', short: 'n', default: 'default' },
  output: { type: 'string', short: 'o', default: 'text' },
  help: { type: 'boolean', short: 'h' },
} as const;

const OUTPUTS = ['text', 'json', 'yaml'] as const;

/** Where the command writes; console by default, so a spawned process and a test see the same lines. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

const consoleIo: CliIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

class UsageError extends Error {}

/** A file's text, or a reason it cannot be read that needs no stack trace to understand. */
function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new TransportError('is a directory: give each file with its own -f (-f dir/a.yaml -f dir/b.yaml)');
    if (code === 'ENOENT') throw new TransportError('no such file');
    if (code === 'EACCES' || code === 'EPERM') throw new TransportError('permission denied');
    throw new TransportError(`cannot be read (${code ?? (e as Error).message})`);
  }
}

/** The admission requests of every document of one file; throws TransportError when the file or a document cannot be read. */
export function readRequests(file: string, namespace: string): { request: AdmissionRequest; index: number }[] {
  const docs = parseAllDocuments(readInput(file));
  const requests: { request: AdmissionRequest; index: number }[] = [];
  docs.forEach((d, i) => {
    if (d.errors.length > 0) throw new TransportError(`document ${i + 1}: ${d.errors[0]!.message.split('\n')[0]}`);
    let value: unknown;
    try {
      value = d.toJS();
    } catch (e) {
      // An alias without its anchor, or more aliases than the parser expands (a "billion laughs" document), is
      // found only here, not in d.errors: unreadable input too, not a crash.
      throw new TransportError(`document ${i + 1}: ${(e as Error).message}`);
    }
    if (value !== null && value !== undefined) requests.push({ request: requestFor(value, namespace, i), index: i });
  });
  if (requests.length === 0) throw new TransportError('no documents found');
  return requests;
}

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (e) {
    // node:util's messages name the option: "Unknown option '--fiel'", "Option '-f, --filename <value>' argument missing".
    if ((e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError((e as Error).message);
    throw e;
  }
}

export function main(argv: string[], io: CliIo = consoleIo): number {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    io.out(USAGE);
    return 0;
  }
  try {
    if (command !== 'review') throw new UsageError(command === undefined ? 'no command given' : `unknown command ${JSON.stringify(command)}: the command is "review"`);
    const values = parseCommandLine(rest);
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const files = values.filename ?? [];
    if (files.length === 0) throw new UsageError('no input: give a file with -f (or -f - for standard input)');
    const output = values.output;
    if (!(OUTPUTS as readonly string[]).includes(output)) throw new UsageError(`--output must be text, json or yaml, got ${JSON.stringify(output)}`);
    return review(files, values.config, values.namespace, output as (typeof OUTPUTS)[number], io);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`acr-pull-webhook: ${e.message}`);
    io.err(USAGE.split('\n')[0]!);
    io.err('run "acr-pull-webhook review --help" for the options');
    return 2;
  }
}

function review(files: string[], configFile: string | undefined, namespace: string, output: (typeof OUTPUTS)[number], io: CliIo): number {
  const ctx = { ownNamespace: process.env.POD_NAMESPACE || 'acr-pull-webhook', regionFromEnv: process.env.ALIBABA_CLOUD_REGION_ID };
  // Every file is read even when one cannot be: a CI log then shows all problems at once.
  const inputs: { file: string; requests: { request: AdmissionRequest; index: number }[] }[] = [];
  let unreadable = false;
  for (const file of files) {
    try {
      inputs.push({ file, requests: readRequests(file, namespace) });
    } catch (e) {
      if (!(e instanceof TransportError)) throw e;
      unreadable = true;
      io.err(`acr-pull-webhook review: ${file === '-' ? '(standard input)' : file}: ${e.message}`);
    }
  }
  // ServiceAccounts in the input (a chart's, say, in any of the files) lend their annotations to the Pods that use them.
  const accounts = new Map<string, ServiceAccountInfo>();
  for (const { requests } of inputs) {
    for (const { request: r } of requests) {
      const sa = isServiceAccount(r.kind) && isObject(r.object) ? toServiceAccountInfo({ ...r.object, metadata: { ...(isObject(r.object.metadata) ? r.object.metadata : {}), namespace: r.namespace } }) : undefined;
      if (sa) accounts.set(`${sa.namespace}/${sa.name}`, sa);
    }
  }
  let rules: ServingRules;
  try {
    const config = configFile ? loadConfigFile(configFile, ctx) : parseConfig({}, ctx, 'defaults');
    rules = servingRules(config, ctx.ownNamespace, undefined, undefined, { serviceAccount: (ns, name) => accounts.get(`${ns}/${name}`) });
  } catch (e) {
    io.err(`acr-pull-webhook review: ${(e as Error).message}`);
    return 2;
  }
  const reports = inputs.flatMap(({ file, requests }) => requests.map(({ request, index }) => reviewDocument(request, rules, `${file}#${index + 1}`)));

  if (output === 'json') io.out(JSON.stringify(reports, null, 2));
  else if (output === 'yaml') io.out(stringifyYaml(reports).trimEnd());
  else {
    for (const r of reports) {
      io.out(`${r.object}: ${r.allowed ? 'ALLOWED' : 'DENIED'}${r.message ? `: ${r.message}` : ''}`);
      for (const w of r.warnings) io.out(`  warning: ${w}`);
      if (r.patch.length > 0) io.out(`  patch: ${JSON.stringify(r.patch)}`);
      if (r.imagePullSecrets !== undefined) io.out(`  imagePullSecrets: ${JSON.stringify(r.imagePullSecrets)}`);
    }
  }
  if (unreadable) return 2;
  return reports.every((r) => r.allowed) ? 0 : 1;
}
