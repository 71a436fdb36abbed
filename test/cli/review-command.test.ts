// The offline `review` command, run as the compiled program: outputs and exit codes.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const CLI = resolve('dist/src/bin.js');
// The region of unprefixed instance IDs comes from the environment, as in the webhook (mixed.yaml has one).
const run = (...args: string[]) => runWith({ ALIBABA_CLOUD_REGION_ID: 'cn-hangzhou' }, ...args);
const runWith = (env: Record<string, string>, ...args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });

describe('acr-pull-webhook review', () => {
  it('reports every document of a YAML file and exits 0 when all are allowed', () => {
    const r = run('review', '-f', 'test/fixtures/cli/mixed.yaml', '-o', 'json');
    expect(r.status).toBe(0);
    const reports = JSON.parse(r.stdout);
    expect(reports.map((x: any) => [x.object, x.allowed])).toEqual([
      ['Deployment team-a/web', true],
      ['Pod default/tool', true],
      ['ImageCache web-cache', true],
    ]);
    const pod = reports[1];
    expect(pod.patch).toEqual([{ op: 'add', path: '/spec/imagePullSecrets/-', value: { name: expect.stringMatching(/^acr-pull-[0-9a-f]{20}$/) } }]);
    expect(pod.imagePullSecrets).toEqual([{ name: 'mine' }, pod.patch[0].value]);
    expect(reports[2].imagePullSecrets).toEqual([expect.stringMatching(/^acr-pull-webhook:acr-pull-[0-9a-f]{20}$/)]);
  });

  it('prints a readable text report', () => {
    const r = run('review', '-f', 'test/fixtures/cli/mixed.yaml', '--namespace', 'team-b');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Pod team-b/tool: ALLOWED: adds pull Secret(s) team-b/acr-pull-');
    expect(r.stdout).toMatch(/imagePullSecrets: \[\{"name":"mine"\},\{"name":"acr-pull-[0-9a-f]{20}"\}\]/);
  });

  it('exits 1 with the webhook\'s message when denied', () => {
    const r = run('review', '-f', 'test/fixtures/cli/denied.yaml');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('Pod default/typo: DENIED: k8s.aliyun.com/acr-user-arns needs k8s.aliyun.com/acr-service-arns');
  });

  it('reads AdmissionReview fixtures too', () => {
    const r = run('review', '-f', 'test/fixtures/admission-review/deny-typo-annotation.json');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('did you mean "k8s.aliyun.com/acr-instance-ids"?');
  });

  it('exits 2 on unreadable input', () => {
    expect(run('review', '-f', 'test/fixtures/cli/unreadable.yaml').status).toBe(2);
    expect(run('review', '-f', 'does-not-exist.yaml').status).toBe(2);
    const bad = run('review');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('usage:');
  });

  it('--help prints the usage and exits 0', () => {
    for (const args of [['--help'], ['review', '--help'], ['review', '-h']]) {
      const r = run(...args);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('usage: acr-pull-webhook review -f <file|->');
      expect(r.stdout).toContain('exit code: 0 everything allowed, 1 something denied, 2 unreadable input');
    }
  });

  it('names an unknown option and a missing value', () => {
    const unknown = run('review', '--fiel', 'x.yaml');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("'--fiel'");
    expect(unknown.stderr).toContain('acr-pull-webhook review --help');
    const missing = run('review', '-f');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('--filename');
    const command = run('reveiw', '-f', 'x.yaml');
    expect(command.status).toBe(2);
    expect(command.stderr).toContain('unknown command "reveiw"');
  });

  it('reviews every file of a repeated -f', () => {
    const r = run('review', '-f', 'test/fixtures/cli/mixed.yaml', '-f', 'test/fixtures/cli/denied.yaml', '-o', 'json');
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).map((x: any) => x.source)).toEqual([
      'test/fixtures/cli/mixed.yaml#1',
      'test/fixtures/cli/mixed.yaml#2',
      'test/fixtures/cli/mixed.yaml#3',
      'test/fixtures/cli/denied.yaml#1',
    ]);
  });

  it('says a directory is a directory', () => {
    const r = run('review', '-f', 'test/fixtures/cli');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('acr-pull-webhook review: test/fixtures/cli: is a directory: give each file with its own -f');
  });

  it('reports the readable files and exits 2 when one of several is unreadable', () => {
    const r = run('review', '-f', 'test/fixtures/cli/mixed.yaml', '-f', 'does-not-exist.yaml');
    expect(r.status).toBe(2);
    expect(r.stdout).toContain('Pod default/tool: ALLOWED');
    expect(r.stderr).toContain('acr-pull-webhook review: does-not-exist.yaml: no such file');
  });

  it('-o yaml prints the same reports as -o json', () => {
    const yaml = run('review', '-f', 'test/fixtures/cli/mixed.yaml', '-o', 'yaml');
    const json = run('review', '-f', 'test/fixtures/cli/mixed.yaml', '-o', 'json');
    expect(yaml.status).toBe(0);
    expect(parseYaml(yaml.stdout)).toEqual(JSON.parse(json.stdout));
    const other = run('review', '-f', 'test/fixtures/cli/mixed.yaml', '-o', 'wide');
    expect(other.status).toBe(2);
    expect(other.stderr).toContain('--output must be text, json or yaml, got "wide"');
  });

  it('without a default region, an unprefixed instance ID is denied as the webhook would deny it', () => {
    const r = runWith({}, 'review', '-f', 'test/fixtures/cli/mixed.yaml');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('ImageCache web-cache: DENIED: k8s.aliyun.com/acr-instance-ids: "cri-abc123def4567890" has no region prefix');
    expect(runWith({ ALIBABA_CLOUD_REGION_ID: 'cn-beijing' }, 'review', '-f', 'test/fixtures/cli/mixed.yaml').status).toBe(0);
  });
});

describe('acr-pull-webhook review with ServiceAccounts', () => {
  it('checks their annotations, and judges the Pods of the same input that use them as if annotated', () => {
    const r = run('review', '-f', 'test/fixtures/cli/chart-with-serviceaccount.yaml', '-o', 'json');
    expect(r.status).toBe(1);
    const [sa, pod, typo] = JSON.parse(r.stdout);
    expect([sa.object, sa.allowed]).toEqual(['ServiceAccount team-a/operator', true]);
    expect([pod.object, pod.allowed]).toEqual(['Pod team-a/operator-0', true]);
    expect(pod.imagePullSecrets).toEqual([{ name: expect.stringMatching(/^acr-pull-[0-9a-f]{20}$/) }]);
    expect([typo.object, typo.allowed]).toEqual(['ServiceAccount team-a/typo', false]);
    expect(typo.message).toMatch(/^ServiceAccount team-a\/typo: metadata\.annotations: k8s\.aliyun\.com\/acr-user-arns needs k8s\.aliyun\.com\/acr-service-arns/);
  });
});
