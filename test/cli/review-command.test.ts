// The offline `review` command, run as the compiled program: outputs and exit codes.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = resolve('dist/src/cli.js');
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH } });

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
