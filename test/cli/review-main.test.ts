// The offline `review` command in-process: main(argv, io) with a capturing io, so every line it writes, its exit
// code and every message are asserted exactly (test/cli/review-command.test.ts runs the compiled program, which
// Stryker's mutants never reach). Standard input ("-f -") is in review-stdin.test.ts, which mocks node:fs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { main, readRequests, requestFor, USAGE, type CliIo } from '../../src/cli.js';

const USAGE_TEXT = [
  'usage: acr-pull-webhook review -f <file|-> [-f <file> ...] [--config <file>] [-n <namespace>] [-o text|json|yaml]',
  '',
  'Shows what the webhook would do with Pods, workloads, ImageCaches or AdmissionReviews (YAML or JSON, several',
  'documents per file), offline: no cluster, no cloud call.',
  '',
  'options:',
  '  -f, --filename <file>    a file to review, "-" for standard input; repeat -f for several files',
  '      --config <file>      the webhook\'s configuration file (policy, registries, defaultRegion)',
  '  -n, --namespace <name>   namespace of objects that name none (default: default)',
  '  -o, --output <format>    text (default), json or yaml',
  '  -h, --help               this help',
  '',
  'Instance IDs without a region prefix take the configuration\'s defaultRegion, else ALIBABA_CLOUD_REGION_ID, as in',
  'the webhook; with neither they are denied.',
  '',
  'exit code: 0 everything allowed, 1 something denied, 2 unreadable input or a usage error',
].join('\n');
const USAGE_LINE = 'usage: acr-pull-webhook review -f <file|-> [-f <file> ...] [--config <file>] [-n <namespace>] [-o text|json|yaml]';
const HELP_HINT = 'run "acr-pull-webhook review --help" for the options';

const MIXED = 'test/fixtures/cli/mixed.yaml';
const DENIED = 'test/fixtures/cli/denied.yaml';
const CHART = 'test/fixtures/cli/chart-with-serviceaccount.yaml';
// Secret names are hashes of the binding (role chain and registry): fixed for a given input.
const TOOL_SECRET = 'acr-pull-b8b97bb81a824cf1ce73';
const CACHE_SECRET = 'acr-pull-a33b5171faf8ca4fbd1c';
const OWNER_SECRET = 'acr-pull-174b2498f3825530d109';

function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l) };
  const code = main(argv, io);
  return { code, out, err };
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'acr-review-main-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
/** Writes one input file into the test's directory; returns its path. */
function input(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

// The environment decides the default region and the webhook's namespace: each test says what it wants.
beforeEach(() => {
  vi.stubEnv('ALIBABA_CLOUD_REGION_ID', undefined);
  vi.stubEnv('POD_NAMESPACE', undefined);
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe('review: the command line', () => {
  it('prints the usage and exits 0 for --help, -h or help, before or after the command', () => {
    expect(USAGE).toBe(USAGE_TEXT);
    for (const argv of [['--help'], ['-h'], ['help'], ['review', '--help'], ['review', '-h'], ['review', '-f', 'missing.yaml', '--help']]) {
      expect(run(...argv), argv.join(' ')).toEqual({ code: 0, out: [USAGE_TEXT], err: [] });
    }
  });

  it('writes to the console when no io is given', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(main(['--help'])).toBe(0);
    expect(log.mock.calls).toEqual([[USAGE_TEXT]]);
    expect(main([])).toBe(2);
    expect(error.mock.calls).toEqual([['acr-pull-webhook: no command given'], [USAGE_LINE], [HELP_HINT]]);
    expect(log.mock.calls).toHaveLength(1);
  });

  it.each([
    [[], 'no command given'],
    [['reveiw', '-f', MIXED], 'unknown command "reveiw": the command is "review"'],
    [['--namespace', 'x'], 'unknown command "--namespace": the command is "review"'],
    [['review'], 'no input: give a file with -f (or -f - for standard input)'],
    [['review', '-n', 'team-a', '-o', 'json'], 'no input: give a file with -f (or -f - for standard input)'],
    [['review', '--fiel', 'x.yaml'], "Unknown option '--fiel'"],
    [['review', '-x'], "Unknown option '-x'"],
    [['review', '-f'], "Option '-f, --filename <value>' argument missing"],
    [['review', '-f', MIXED, '--config'], "Option '--config <value>' argument missing"],
    [['review', '-f', MIXED, '-n'], "Option '-n, --namespace <value>' argument missing"],
    [['review', '-f', MIXED, '-o'], "Option '-o, --output <value>' argument missing"],
    [['review', '--help=yes'], "Option '-h, --help' does not take an argument"],
    [['review', MIXED], `Unexpected argument '${MIXED}'. This command does not take positional arguments`],
    [['review', '-f', MIXED, '-o', 'wide'], '--output must be text, json or yaml, got "wide"'],
    [['review', '-f', MIXED, '--output', 'JSON'], '--output must be text, json or yaml, got "JSON"'],
    [['review', '-f', MIXED, '--output', ''], '--output must be text, json or yaml, got ""'],
    // Options are checked before any file is read: the missing file is not mentioned.
    [['review', '-f', 'does-not-exist.yaml', '-o', 'table'], '--output must be text, json or yaml, got "table"'],
  ])('%j is a usage error: %s', (argv, message) => {
    expect(run(...argv)).toEqual({ code: 2, out: [], err: [`acr-pull-webhook: ${message}`, USAGE_LINE, HELP_HINT] });
  });

  it('lets an error that is not about the input through, instead of calling it a usage error', () => {
    const io: CliIo = {
      out: () => {
        throw new Error('write EPIPE');
      },
      err: () => {},
    };
    expect(() => main(['review', '-f', DENIED], io)).toThrow(new Error('write EPIPE'));
  });

  it('an argument that is not a string (a caller\'s bug, not a usage error) is thrown as node:util\'s parser threw it', () => {
    const io: CliIo = { out: () => {}, err: () => {} };
    // The parser's own TypeError carries no ERR_PARSE_ARGS code: it is not turned into "usage error" and exit 2.
    expect(() => main(['review', Symbol('-f') as unknown as string], io)).toThrow(new TypeError('Cannot convert a Symbol value to a string'));
    // An error with another code, here from an argument that cannot be made a string, goes through too.
    const failure = Object.assign(new Error('not printable'), { code: 'ERR_INVALID_ARG_VALUE' });
    const unprintable = {
      toString(): string {
        throw failure;
      },
    };
    expect(() => main(['review', unprintable as unknown as string], io)).toThrow(failure);
  });
});

describe('review: output', () => {
  beforeEach(() => {
    // mixed.yaml's ImageCache names an instance without a region prefix.
    vi.stubEnv('ALIBABA_CLOUD_REGION_ID', 'cn-hangzhou');
  });

  it('prints one line per document, then its warnings, patch and resulting imagePullSecrets (text, the default)', () => {
    expect(run('review', '-f', MIXED)).toEqual({
      code: 0,
      out: [
        'Deployment team-a/web: ALLOWED',
        `Pod default/tool: ALLOWED: adds pull Secret(s) default/${TOOL_SECRET}`,
        `  patch: [{"op":"add","path":"/spec/imagePullSecrets/-","value":{"name":"${TOOL_SECRET}"}}]`,
        `  imagePullSecrets: [{"name":"mine"},{"name":"${TOOL_SECRET}"}]`,
        `ImageCache web-cache: ALLOWED: adds pull Secret(s) acr-pull-webhook/${CACHE_SECRET}`,
        `  patch: [{"op":"add","path":"/spec/imagePullSecrets","value":["acr-pull-webhook:${CACHE_SECRET}"]}]`,
        `  imagePullSecrets: ["acr-pull-webhook:${CACHE_SECRET}"]`,
      ],
      err: [],
    });
    expect(run('review', '-f', MIXED, '-o', 'text').out).toHaveLength(7);
  });

  it('-n names the namespace of objects that give none', () => {
    expect(run('review', '--filename', MIXED, '--namespace', 'team-b').out.slice(0, 4)).toEqual([
      'Deployment team-a/web: ALLOWED',
      `Pod team-b/tool: ALLOWED: adds pull Secret(s) team-b/${TOOL_SECRET}`,
      `  patch: [{"op":"add","path":"/spec/imagePullSecrets/-","value":{"name":"${TOOL_SECRET}"}}]`,
      `  imagePullSecrets: [{"name":"mine"},{"name":"${TOOL_SECRET}"}]`,
    ]);
    expect(run('review', '-f', MIXED, '-n', 'team-c').out[1]).toBe(`Pod team-c/tool: ALLOWED: adds pull Secret(s) team-c/${TOOL_SECRET}`);
  });

  it('-o json prints the reports as one indented JSON array', () => {
    const r = run('review', '-f', MIXED, '-o', 'json');
    expect(r.code).toBe(0);
    expect(r.err).toEqual([]);
    expect(r.out).toEqual([
      `[
  {
    "source": "test/fixtures/cli/mixed.yaml#1",
    "object": "Deployment team-a/web",
    "allowed": true,
    "warnings": [],
    "patch": []
  },
  {
    "source": "test/fixtures/cli/mixed.yaml#2",
    "object": "Pod default/tool",
    "allowed": true,
    "message": "adds pull Secret(s) default/${TOOL_SECRET}",
    "warnings": [],
    "patch": [
      {
        "op": "add",
        "path": "/spec/imagePullSecrets/-",
        "value": {
          "name": "${TOOL_SECRET}"
        }
      }
    ],
    "imagePullSecrets": [
      {
        "name": "mine"
      },
      {
        "name": "${TOOL_SECRET}"
      }
    ]
  },
  {
    "source": "test/fixtures/cli/mixed.yaml#3",
    "object": "ImageCache web-cache",
    "allowed": true,
    "message": "adds pull Secret(s) acr-pull-webhook/${CACHE_SECRET}",
    "warnings": [],
    "patch": [
      {
        "op": "add",
        "path": "/spec/imagePullSecrets",
        "value": [
          "acr-pull-webhook:${CACHE_SECRET}"
        ]
      }
    ],
    "imagePullSecrets": [
      "acr-pull-webhook:${CACHE_SECRET}"
    ]
  }
]`,
    ]);
  });

  it('-o yaml prints the same reports as YAML, without a trailing newline', () => {
    expect(run('review', '-f', MIXED, '--output', 'yaml')).toEqual({
      code: 0,
      out: [
        `- source: test/fixtures/cli/mixed.yaml#1
  object: Deployment team-a/web
  allowed: true
  warnings: []
  patch: []
- source: test/fixtures/cli/mixed.yaml#2
  object: Pod default/tool
  allowed: true
  message: adds pull Secret(s) default/${TOOL_SECRET}
  warnings: []
  patch:
    - op: add
      path: /spec/imagePullSecrets/-
      value:
        name: ${TOOL_SECRET}
  imagePullSecrets:
    - name: mine
    - name: ${TOOL_SECRET}
- source: test/fixtures/cli/mixed.yaml#3
  object: ImageCache web-cache
  allowed: true
  message: adds pull Secret(s) acr-pull-webhook/${CACHE_SECRET}
  warnings: []
  patch:
    - op: add
      path: /spec/imagePullSecrets
      value:
        - acr-pull-webhook:${CACHE_SECRET}
  imagePullSecrets:
    - acr-pull-webhook:${CACHE_SECRET}`,
      ],
      err: [],
    });
  });

  it('reviews every file of a repeated -f, in order, and exits 1 when any document is denied', () => {
    const r = run('review', '-f', MIXED, '-f', DENIED, '-f', MIXED);
    expect(r.code).toBe(1);
    expect(r.err).toEqual([]);
    expect(r.out.filter((l) => !l.startsWith('  '))).toEqual([
      'Deployment team-a/web: ALLOWED',
      `Pod default/tool: ALLOWED: adds pull Secret(s) default/${TOOL_SECRET}`,
      `ImageCache web-cache: ALLOWED: adds pull Secret(s) acr-pull-webhook/${CACHE_SECRET}`,
      "Pod default/typo: DENIED: k8s.aliyun.com/acr-user-arns needs k8s.aliyun.com/acr-service-arns: the user role is assumed with the service role's credentials, so add the RAM role of the workload's account that the user role trusts",
      'Deployment team-a/web: ALLOWED',
      `Pod default/tool: ALLOWED: adds pull Secret(s) default/${TOOL_SECRET}`,
      `ImageCache web-cache: ALLOWED: adds pull Secret(s) acr-pull-webhook/${CACHE_SECRET}`,
    ]);
    expect(JSON.parse(run('review', '-f', DENIED, '-f', MIXED, '-o', 'json').out[0]!).map((x: { source: string }) => x.source)).toEqual([
      'test/fixtures/cli/denied.yaml#1',
      'test/fixtures/cli/mixed.yaml#1',
      'test/fixtures/cli/mixed.yaml#2',
      'test/fixtures/cli/mixed.yaml#3',
    ]);
  });

  it('a denial has a message, no warnings and no patch', () => {
    expect(run('review', '-f', DENIED, '-o', 'json')).toEqual({
      code: 1,
      out: [
        `[
  {
    "source": "test/fixtures/cli/denied.yaml#1",
    "object": "Pod default/typo",
    "allowed": false,
    "message": "k8s.aliyun.com/acr-user-arns needs k8s.aliyun.com/acr-service-arns: the user role is assumed with the service role's credentials, so add the RAM role of the workload's account that the user role trusts",
    "warnings": [],
    "patch": []
  }
]`,
      ],
      err: [],
    });
  });

  it('ImageCache Secrets live in the webhook\'s namespace: POD_NAMESPACE, else acr-pull-webhook', () => {
    vi.stubEnv('POD_NAMESPACE', 'webhooks');
    expect(run('review', '-f', MIXED).out.slice(4)).toEqual([
      `ImageCache web-cache: ALLOWED: adds pull Secret(s) webhooks/${CACHE_SECRET}`,
      `  patch: [{"op":"add","path":"/spec/imagePullSecrets","value":["webhooks:${CACHE_SECRET}"]}]`,
      `  imagePullSecrets: ["webhooks:${CACHE_SECRET}"]`,
    ]);
    vi.stubEnv('POD_NAMESPACE', '');
    expect(run('review', '-f', MIXED).out[4]).toBe(`ImageCache web-cache: ALLOWED: adds pull Secret(s) acr-pull-webhook/${CACHE_SECRET}`);
  });

  it('without a default region an unprefixed instance ID is denied, as the webhook denies it', () => {
    vi.stubEnv('ALIBABA_CLOUD_REGION_ID', undefined);
    const r = run('review', '-f', MIXED);
    expect(r.code).toBe(1);
    expect(r.out.at(-1)).toBe(
      'ImageCache web-cache: DENIED: k8s.aliyun.com/acr-instance-ids: "cri-abc123def4567890" has no region prefix and acr-pull-webhook has no default region: write it as <region>:cri-abc123def4567890 (e.g. cn-beijing:cri-abc123def4567890), or ask the cluster operator to set ALIBABA_CLOUD_REGION_ID or defaultRegion',
    );
  });
});

describe('review: what each kind of document gets', () => {
  it('objects the webhook leaves alone are allowed unchanged, with the reason; a nameless object is "(generated name)"', () => {
    const file = input(
      'unchanged.yaml',
      `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
---
apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: team-a}
spec:
  containers: [{name: c, image: nginx:1.27}]
---
apiVersion: v1
kind: Pod
metadata:
  name: static
  annotations: {kubernetes.io/config.mirror: abc}
spec:
  containers: [{name: c, image: nginx:1.27}]
---
apiVersion: v1
kind: Pod
metadata:
  generateName: web-
  namespace: kube-system
  annotations: {k8s.aliyun.com/acr-instance-ids: "cn-beijing:cri-abc123def4567890"}
spec:
  containers: [{name: c, image: registry.example.com/app/web:1.0}]
`,
    );
    expect(run('review', '-f', file)).toEqual({
      code: 0,
      out: [
        'ConfigMap default/settings: ALLOWED: unchanged (unhandled-kind)',
        'Pod team-a/plain: ALLOWED: unchanged (no-annotation)',
        'Pod default/static: ALLOWED: unchanged (mirror-pod)',
        'Pod kube-system/(generated name): ALLOWED: unchanged (excluded-namespace)',
        '  warning: ACR annotations ignored: acr-pull-webhook does not serve namespace kube-system',
      ],
      err: [],
    });
    const json = JSON.parse(run('review', '-f', file, '-o', 'json').out[0]!);
    expect(json[0]).toStrictEqual({ source: `${file}#1`, object: 'ConfigMap default/settings', allowed: true, message: 'unchanged (unhandled-kind)', warnings: [], patch: [] });
    expect(json[3]).toStrictEqual({
      source: `${file}#4`,
      object: 'Pod kube-system/(generated name)',
      allowed: true,
      message: 'unchanged (excluded-namespace)',
      warnings: ['ACR annotations ignored: acr-pull-webhook does not serve namespace kube-system'],
      patch: [],
    });
  });

  it('workloads: their template is judged as a Pod; warnings are kept, a denial names the field', () => {
    const file = input(
      'workloads.yaml',
      `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  annotations: {k8s.aliyun.com/acr-instance-ids: "cn-beijing:cri-abc123def4567890"}
spec:
  template:
    spec:
      containers: [{name: c, image: nginx:1.27}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: team-a}
spec:
  jobTemplate:
    spec:
      template:
        metadata:
          annotations: {k8s.aliyun.com/acr-instance-ides: "cn-beijing:cri-abc123def4567890"}
        spec:
          containers: [{name: c, image: nginx:1.27}]
`,
    );
    expect(run('review', '-f', file)).toEqual({
      code: 1,
      out: [
        'StatefulSet default/db: ALLOWED',
        '  warning: StatefulSet has ACR annotations on its own metadata: move them to spec.template.metadata.annotations',
        'CronJob team-a/nightly: DENIED: CronJob team-a/nightly: spec.jobTemplate.spec.template.metadata.annotations: unknown annotation "k8s.aliyun.com/acr-instance-ides": did you mean "k8s.aliyun.com/acr-instance-ids"?',
      ],
      err: [],
    });
    expect(JSON.parse(run('review', '-f', file, '-o', 'json').out[0]!)).toStrictEqual([
      {
        source: `${file}#1`,
        object: 'StatefulSet default/db',
        allowed: true,
        warnings: ['StatefulSet has ACR annotations on its own metadata: move them to spec.template.metadata.annotations'],
        patch: [],
      },
      {
        source: `${file}#2`,
        object: 'CronJob team-a/nightly',
        allowed: false,
        message:
          'CronJob team-a/nightly: spec.jobTemplate.spec.template.metadata.annotations: unknown annotation "k8s.aliyun.com/acr-instance-ides": did you mean "k8s.aliyun.com/acr-instance-ids"?',
        warnings: [],
        patch: [],
      },
    ]);
  });

  it('several Secrets are listed comma-separated; Secrets the object already lists are neither patched nor repeated', () => {
    const file = input(
      'secrets.yaml',
      `apiVersion: v1
kind: Pod
metadata:
  name: two
  annotations:
    k8s.aliyun.com/acr-instance-ids: cn-beijing:cri-aaaa000000000001,cn-beijing:cri-bbbb000000000002
    k8s.aliyun.com/acr-service-arns: acs:ram::1234567890123456:role/acr-pull
    k8s.aliyun.com/acr-user-arns: acs:ram::6543210987654321:role/registry-reader,acs:ram::7777777777777777:role/reader
spec:
  containers: [{name: a, image: a.example.com/x:1}, {name: b, image: b.example.com/y:1}]
---
apiVersion: v1
kind: Pod
metadata:
  name: listed
  annotations:
    k8s.aliyun.com/acr-service-arns: acs:ram::1234567890123456:role/acr-pull
spec:
  imagePullSecrets: [{name: ${TOOL_SECRET}}]
  containers: [{name: tool, image: myreg-registry.cn-hangzhou.cr.aliyuncs.com/ops/tool:2}]
---
apiVersion: eci.alibabacloud.com/v1
kind: ImageCache
metadata:
  name: cached
  annotations:
    k8s.aliyun.com/acr-instance-ids: cn-hangzhou:cri-abc123def4567890
spec:
  imagePullSecrets: [other:x, acr-pull-webhook:${CACHE_SECRET}]
  images: [registry.example.com/app/web:1.0]
`,
    );
    expect(run('review', '-f', file)).toEqual({
      code: 0,
      out: [
        'Pod default/two: ALLOWED: adds pull Secret(s) default/acr-pull-9427736d56f99b268631, default/acr-pull-5c8ce0189f6e4b76ecf5',
        '  patch: [{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"acr-pull-9427736d56f99b268631"},{"name":"acr-pull-5c8ce0189f6e4b76ecf5"}]}]',
        '  imagePullSecrets: [{"name":"acr-pull-9427736d56f99b268631"},{"name":"acr-pull-5c8ce0189f6e4b76ecf5"}]',
        `Pod default/listed: ALLOWED: adds pull Secret(s) default/${TOOL_SECRET}`,
        `  imagePullSecrets: [{"name":"${TOOL_SECRET}"}]`,
        `ImageCache cached: ALLOWED: adds pull Secret(s) acr-pull-webhook/${CACHE_SECRET}`,
        `  imagePullSecrets: ["other:x","acr-pull-webhook:${CACHE_SECRET}"]`,
      ],
      err: [],
    });
  });

  it('AdmissionReviews are reviewed as the request they carry', () => {
    expect(run('review', '-f', 'test/fixtures/admission-review/deny-typo-annotation.json', '-f', 'test/fixtures/admission-review/pod-update.json')).toEqual({
      code: 1,
      out: [
        'Pod team-a/web: DENIED: unknown annotation "k8s.aliyun.com/acr-instance-ides": did you mean "k8s.aliyun.com/acr-instance-ids"?',
        'Pod team-a/web: ALLOWED: unchanged (not-create)',
      ],
      err: [],
    });
  });

  it('a workload the webhook does not judge (a DELETE, a status update) is allowed with no message, warning or patch', () => {
    const review = (operation: string, subResource?: string) =>
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: `u-${operation}`,
          kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
          operation,
          namespace: 'team-a',
          name: 'web',
          ...(subResource ? { subResource } : {}),
          object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', annotations: { 'k8s.aliyun.com/acr-instance-ids': 'x' } }, spec: {} },
        },
      });
    const file = input('skipped-workloads.yaml', `${review('DELETE')}\n---\n${review('UPDATE', 'status')}\n`);
    expect(run('review', '-f', file)).toEqual({ code: 0, out: ['Deployment team-a/web: ALLOWED', 'Deployment team-a/web: ALLOWED'], err: [] });
    expect(JSON.parse(run('review', '-f', file, '-o', 'json').out[0]!)).toStrictEqual([
      { source: `${file}#1`, object: 'Deployment team-a/web', allowed: true, warnings: [], patch: [] },
      { source: `${file}#2`, object: 'Deployment team-a/web', allowed: true, warnings: [], patch: [] },
    ]);
  });

  it('an AdmissionReview without an object is denied as the webhook denies it, also for a ServiceAccount', () => {
    const review = (kind: string, name: string) =>
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: `u-${name}`, kind: { group: '', version: 'v1', kind }, operation: 'CREATE', namespace: 'team-a', name },
      });
    const file = input('no-object.yaml', `${review('ServiceAccount', 'sa')}\n---\n${review('Pod', 'pod')}\n`);
    expect(run('review', '-f', file)).toEqual({
      code: 1,
      out: ['ServiceAccount team-a/sa: DENIED: request.object is missing or not an object', 'Pod team-a/pod: DENIED: request.object is missing or not an object'],
      err: [],
    });
  });

  it('JSON input, empty documents skipped (the numbering keeps them), objects without metadata, and a namespace that is not a string', () => {
    const nulls = input('nulls.yaml', '---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: third, namespace: 7}\n');
    const json = input('secret.json', '{"apiVersion": "v1", "kind": "Secret"}');
    const r = run('review', '-f', nulls, '-f', json, '-n', 'team-a', '-o', 'json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out[0]!)).toStrictEqual([
      { source: `${nulls}#2`, object: 'ConfigMap team-a/third', allowed: true, message: 'unchanged (unhandled-kind)', warnings: [], patch: [] },
      { source: `${json}#1`, object: 'Secret team-a/(generated name)', allowed: true, message: 'unchanged (unhandled-kind)', warnings: [], patch: [] },
    ]);
  });
});

describe('review: ServiceAccounts', () => {
  it('checks their annotations and lends them to the Pods that use them, from any file of the input', () => {
    const accounts = input(
      'accounts.yaml',
      `apiVersion: v1
kind: ServiceAccount
metadata: {name: plain}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: builder
  namespace: kube-system
  annotations: {k8s.aliyun.com/acr-instance-ids: "cn-beijing:cri-abc123def4567890"}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: runner
  annotations:
    k8s.aliyun.com/acr-instance-ids: "cn-beijing:cri-owner000000001"
    k8s.aliyun.com/acr-service-arns: "acs:ram::1234567890123456:role/acr-pull"
`,
    );
    const pods = input(
      'pods.yaml',
      `apiVersion: v1
kind: Pod
metadata: {name: job-1, namespace: team-a}
spec:
  serviceAccountName: runner
  containers: [{name: c, image: demo-owner-registry.cn-beijing.cr.aliyuncs.com/app/job:1}]
---
apiVersion: v1
kind: Pod
metadata: {name: job-2}
spec:
  serviceAccountName: runner
  containers: [{name: c, image: demo-owner-registry.cn-beijing.cr.aliyuncs.com/app/job:1}]
`,
    );
    // The ServiceAccount without a namespace is in -n's namespace, as its Pods are.
    expect(run('review', '-f', accounts, '-f', pods, '-n', 'team-a')).toEqual({
      code: 0,
      out: [
        'ServiceAccount team-a/plain: ALLOWED: annotations accepted',
        'ServiceAccount kube-system/builder: ALLOWED: annotations accepted',
        '  warning: ACR annotations ignored: acr-pull-webhook does not serve namespace kube-system',
        'ServiceAccount team-a/runner: ALLOWED: annotations accepted',
        `Pod team-a/job-1: ALLOWED: adds pull Secret(s) team-a/${OWNER_SECRET}`,
        `  patch: [{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"${OWNER_SECRET}"}]}]`,
        `  imagePullSecrets: [{"name":"${OWNER_SECRET}"}]`,
        `Pod team-a/job-2: ALLOWED: adds pull Secret(s) team-a/${OWNER_SECRET}`,
        `  patch: [{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"${OWNER_SECRET}"}]}]`,
        `  imagePullSecrets: [{"name":"${OWNER_SECRET}"}]`,
      ],
      err: [],
    });
    // Files in the other order, no -n: the ServiceAccounts are in default, so only job-2 (also in default) uses one.
    expect(run('review', '-f', pods, '-f', accounts)).toEqual({
      code: 0,
      out: [
        'Pod team-a/job-1: ALLOWED: unchanged (no-annotation)',
        `Pod default/job-2: ALLOWED: adds pull Secret(s) default/${OWNER_SECRET}`,
        `  patch: [{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"${OWNER_SECRET}"}]}]`,
        `  imagePullSecrets: [{"name":"${OWNER_SECRET}"}]`,
        'ServiceAccount default/plain: ALLOWED: annotations accepted',
        'ServiceAccount kube-system/builder: ALLOWED: annotations accepted',
        '  warning: ACR annotations ignored: acr-pull-webhook does not serve namespace kube-system',
        'ServiceAccount default/runner: ALLOWED: annotations accepted',
      ],
      err: [],
    });
  });

  it('a refused ServiceAccount is denied with the webhook\'s message', () => {
    const r = run('review', '-f', CHART, '-o', 'json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out[0]!)[2]).toStrictEqual({
      source: `${CHART}#3`,
      object: 'ServiceAccount team-a/typo',
      allowed: false,
      message:
        "ServiceAccount team-a/typo: metadata.annotations: k8s.aliyun.com/acr-user-arns needs k8s.aliyun.com/acr-service-arns: the user role is assumed with the service role's credentials, so add the RAM role of the workload's account that the user role trusts",
      warnings: [],
      patch: [],
    });
  });

  it('only ServiceAccounts lend annotations: a Pod named like a ServiceAccount does not', () => {
    const file = input(
      'pod-named-runner.yaml',
      `apiVersion: v1
kind: Pod
metadata:
  name: runner
  annotations:
    k8s.aliyun.com/acr-instance-ids: "cn-beijing:cri-owner000000001"
    k8s.aliyun.com/acr-service-arns: "acs:ram::1234567890123456:role/acr-pull"
spec:
  containers: [{name: c, image: demo-owner-registry.cn-beijing.cr.aliyuncs.com/app/job:1}]
---
apiVersion: v1
kind: Pod
metadata: {name: job}
spec:
  serviceAccountName: runner
  containers: [{name: c, image: demo-owner-registry.cn-beijing.cr.aliyuncs.com/app/job:1}]
`,
    );
    expect(run('review', '-f', file).out).toEqual([
      `Pod default/runner: ALLOWED: adds pull Secret(s) default/${OWNER_SECRET}`,
      `  patch: [{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"${OWNER_SECRET}"}]}]`,
      `  imagePullSecrets: [{"name":"${OWNER_SECRET}"}]`,
      'Pod default/job: ALLOWED: unchanged (no-annotation)',
    ]);
  });
});

describe('review: unreadable input', () => {
  it.each([
    ['a missing file', () => join(dir, 'does-not-exist.yaml'), 'no such file'],
    ['a directory', () => dir, 'is a directory: give each file with its own -f (-f dir/a.yaml -f dir/b.yaml)'],
    ['an empty file', () => input('empty.yaml', ''), 'no documents found'],
    ['comments and empty documents only', () => input('comments.yaml', '# nothing here\n---\n---\n'), 'no documents found'],
    [
      'YAML that does not parse: the first line of the parser\'s message',
      () => input('unclosed.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n'),
      'document 1: Flow sequence in block collection must be sufficiently indented and end with a ] at line 4, column 1:',
    ],
    [
      'a second document that does not parse',
      () => input('second-unclosed.yaml', 'apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: [x\n'),
      'document 2: Flow sequence in block collection must be sufficiently indented and end with a ] at line 7, column 1:',
    ],
    ['an alias without its anchor', () => input('alias.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: *meta\n'), 'document 1: Unresolved alias (the anchor must be set before the alias): meta'],
    [
      'an alias bomb',
      () =>
        input(
          'bomb.yaml',
          'a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n',
        ),
      'document 1: Excessive alias count indicates a resource exhaustion attack',
    ],
    ['a document without kind', () => input('no-kind.yaml', 'apiVersion: v1\nmetadata: {name: a}\n'), 'document 1 is not a Kubernetes object (apiVersion and kind are required)'],
    [
      'a second document without apiVersion',
      () => input('no-api-version.yaml', 'apiVersion: v1\nkind: Pod\n---\nkind: Pod\nmetadata: {name: b}\n'),
      'document 2 is not a Kubernetes object (apiVersion and kind are required)',
    ],
    ['an apiVersion that is not a string', () => input('number-api-version.yaml', 'apiVersion: 1\nkind: Pod\n'), 'document 1 is not a Kubernetes object (apiVersion and kind are required)'],
    ['a kind that is not a string', () => input('list-kind.yaml', 'apiVersion: v1\nkind: [Pod]\n'), 'document 1 is not a Kubernetes object (apiVersion and kind are required)'],
    ['a third document that is a list', () => input('list.yaml', 'apiVersion: v1\nkind: Pod\n---\n---\n- apiVersion: v1\n  kind: Pod\n'), 'document 3 is not a Kubernetes object (apiVersion and kind are required)'],
    ['a scalar document', () => input('scalar.yaml', 'just text\n'), 'document 1 is not a Kubernetes object (apiVersion and kind are required)'],
    [
      'an AdmissionReview of another version',
      () => 'test/fixtures/admission-review/transport-v1beta1.json',
      'apiVersion must be "admission.k8s.io/v1" (register the webhook with admissionReviewVersions: [v1])',
    ],
  ])('%s: exit 2, the file named', (_what, file, message) => {
    const path = file();
    expect(run('review', '-f', path)).toEqual({ code: 2, out: [], err: [`acr-pull-webhook review: ${path}: ${message}`] });
  });

  it('reads every file, reports those it could, and exits 2 even when something is also denied', () => {
    const missing = join(dir, 'missing.yaml');
    const empty = input('nothing.yaml', '');
    const r = run('review', '-f', missing, '-f', DENIED, '-f', empty, '-o', 'json');
    expect(r.err).toEqual([`acr-pull-webhook review: ${missing}: no such file`, `acr-pull-webhook review: ${empty}: no documents found`]);
    expect(JSON.parse(r.out[0]!).map((x: { object: string; allowed: boolean }) => [x.object, x.allowed])).toEqual([['Pod default/typo', false]]);
    expect(r.code).toBe(2);
  });
});

describe('review --config', () => {
  it('uses the file: its default region, ImageCache Secret namespace and excluded namespaces', () => {
    const config = input('config.yaml', 'defaultRegion: cn-shanghai\nimageCacheSecretNamespace: caches\nnamespaces: {exclude: [sandbox-*]}\n');
    const sandbox = input(
      'sandbox.yaml',
      `apiVersion: v1
kind: Pod
metadata:
  name: tool
  namespace: sandbox-1
  annotations: {k8s.aliyun.com/acr-service-arns: "acs:ram::1234567890123456:role/acr-pull"}
spec:
  containers: [{name: tool, image: myreg-registry.cn-hangzhou.cr.aliyuncs.com/ops/tool:2}]
`,
    );
    // No ALIBABA_CLOUD_REGION_ID: the ImageCache's unprefixed instance takes the file's cn-shanghai.
    expect(run('review', '-f', MIXED, '-f', sandbox, '--config', config)).toEqual({
      code: 0,
      out: [
        'Deployment team-a/web: ALLOWED',
        `Pod default/tool: ALLOWED: adds pull Secret(s) default/${TOOL_SECRET}`,
        `  patch: [{"op":"add","path":"/spec/imagePullSecrets/-","value":{"name":"${TOOL_SECRET}"}}]`,
        `  imagePullSecrets: [{"name":"mine"},{"name":"${TOOL_SECRET}"}]`,
        'ImageCache web-cache: ALLOWED: adds pull Secret(s) caches/acr-pull-607f0a55afe8423e5263',
        '  patch: [{"op":"add","path":"/spec/imagePullSecrets","value":["caches:acr-pull-607f0a55afe8423e5263"]}]',
        '  imagePullSecrets: ["caches:acr-pull-607f0a55afe8423e5263"]',
        'Pod sandbox-1/tool: ALLOWED: unchanged (excluded-namespace)',
        '  warning: ACR annotations ignored: acr-pull-webhook does not serve namespace sandbox-1',
      ],
      err: [],
    });
  });

  it('a bad or missing configuration file: exit 2 with the configuration\'s message, and no report', () => {
    const bad = input('bad-config.yaml', 'defaultRegion: nowhere\n');
    expect(run('review', '-f', MIXED, '--config', bad)).toEqual({
      code: 2,
      out: [],
      err: [`acr-pull-webhook review: ${bad}: defaultRegion: "nowhere" is not a region ID such as cn-hangzhou`],
    });
    const missing = join(dir, 'no-config.yaml');
    expect(run('review', '-f', MIXED, '--config', missing)).toEqual({
      code: 2,
      out: [],
      err: [`acr-pull-webhook review: ${missing}: (file): cannot read ${missing}: ENOENT`],
    });
  });

  it('without --config the defaults are used, and a bad ALIBABA_CLOUD_REGION_ID is named as their source', () => {
    vi.stubEnv('ALIBABA_CLOUD_REGION_ID', 'nowhere');
    expect(run('review', '-f', MIXED)).toEqual({
      code: 2,
      out: [],
      err: ['acr-pull-webhook review: defaults: defaultRegion (from ALIBABA_CLOUD_REGION_ID): "nowhere" is not a region ID such as cn-hangzhou'],
    });
  });

  it('input errors come first, then the configuration\'s', () => {
    const bad = input('bad-config-2.yaml', 'defaultRegion: nowhere\n');
    const missing = join(dir, 'absent.yaml');
    expect(run('review', '-f', missing, '--config', bad).err).toEqual([
      `acr-pull-webhook review: ${missing}: no such file`,
      `acr-pull-webhook review: ${bad}: defaultRegion: "nowhere" is not a region ID such as cn-hangzhou`,
    ]);
  });
});

describe('requestFor', () => {
  it('makes the CREATE dry-run request the API server would send, numbered from 1', () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'team-a' } };
    expect(requestFor(pod, 'default', 0)).toStrictEqual({
      uid: 'offline-1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      operation: 'CREATE',
      namespace: 'team-a',
      name: 'web',
      dryRun: true,
      object: pod,
    });
    const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 7, namespace: ['x'] } };
    expect(requestFor(deployment, 'team-b', 4)).toStrictEqual({
      uid: 'offline-5',
      kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      operation: 'CREATE',
      namespace: 'team-b',
      name: undefined,
      dryRun: true,
      object: deployment,
    });
  });

  it('ImageCaches are cluster-scoped: no namespace even when the metadata names one', () => {
    const cache = { apiVersion: 'eci.alibabacloud.com/v1', kind: 'ImageCache', metadata: { name: 'c', namespace: 'team-a' } };
    expect(requestFor(cache, 'default', 1)).toStrictEqual({
      uid: 'offline-2',
      kind: { group: 'eci.alibabacloud.com', version: 'v1', kind: 'ImageCache' },
      operation: 'CREATE',
      namespace: undefined,
      name: 'c',
      dryRun: true,
      object: cache,
    });
  });

  it('an object without metadata has the default namespace and no name', () => {
    expect(requestFor({ apiVersion: 'v1', kind: 'Pod', metadata: 'x' }, 'team-c', 2)).toStrictEqual({
      uid: 'offline-3',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      operation: 'CREATE',
      namespace: 'team-c',
      name: undefined,
      dryRun: true,
      object: { apiVersion: 'v1', kind: 'Pod', metadata: 'x' },
    });
  });

  it('an AdmissionReview gives the request it carries, as the webhook reads it', () => {
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'UPDATE', namespace: 'team-a', name: 'web', object: { spec: {} } },
    };
    expect(requestFor(review, 'default', 0)).toStrictEqual({
      uid: 'u-1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      operation: 'UPDATE',
      subResource: undefined,
      namespace: 'team-a',
      name: 'web',
      dryRun: false,
      object: { spec: {} },
    });
  });

  it('refuses what is not a Kubernetes object, naming the document', () => {
    expect(() => requestFor('text', 'default', 0)).toThrow('document 1 is not a Kubernetes object (apiVersion and kind are required)');
    expect(() => requestFor({ kind: 'Pod' }, 'default', 3)).toThrow('document 4 is not a Kubernetes object (apiVersion and kind are required)');
    expect(() => requestFor({ apiVersion: 'v1' }, 'default', 1)).toThrow('document 2 is not a Kubernetes object (apiVersion and kind are required)');
  });
});

describe('readRequests', () => {
  it('gives every non-empty document with its index in the file', () => {
    const file = input('indexed.yaml', '---\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\n');
    expect(readRequests(file, 'team-a').map(({ request, index }) => [request.uid, request.namespace, request.name, index])).toEqual([
      ['offline-1', 'team-a', 'a', 0],
      ['offline-3', 'team-a', 'b', 2],
    ]);
  });
});
