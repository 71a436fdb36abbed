// The validating path: workload templates go through the Pod rules; warnings for likely mistakes.
import { beforeEach, describe, expect, it } from 'vitest';
import { planAdmission, servingRules } from '../../src/admission/plan.js';
import { parseAdmissionReview } from '../../src/admission/review.js';
import { validateWorkload } from '../../src/admission/workloads.js';
import { parseConfig } from '../../src/config/config.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const DIR = 'test/fixtures/validate';
const load = (name: string) => JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8'));
// Built before each test, not at collection time: Stryker then credits each test with the code it runs
// (code run while a file loads counts as static and would be tested against every test).
let rules!: ReturnType<typeof servingRules>;
beforeEach(() => {
  rules = servingRules(
    parseConfig({ defaultRegion: 'cn-hangzhou', registries: [{ instanceId: 'cri-abc123def4567890', domains: ['registry.example.com'] }] }, { ownNamespace: 'acr-pull-webhook' }),
    'acr-pull-webhook',
  );
});
const validate = (doc: any) => validateWorkload(parseAdmissionReview(doc), rules);

describe('workload templates', () => {
  const kinds = ['deployment', 'statefulset', 'daemonset', 'replicaset', 'job', 'cronjob'];
  it.each(kinds)('%s: a valid template is allowed without warnings', (k) => {
    expect(validate(load(`${k}-valid`))).toEqual({ action: 'allow', warnings: [] });
  });

  it.each(kinds)('%s: an invalid template is denied with the Pod message, the workload and the field path', (k) => {
    const doc = load(`${k}-invalid`);
    const v = validate(doc);
    const path = k === 'cronjob' ? 'spec.jobTemplate.spec.template' : 'spec.template';
    expect(v).toEqual({
      action: 'deny',
      code: 400,
      message: `${doc.request.kind.kind} team-a/web: ${path}.metadata.annotations: k8s.aliyun.com/acr-instance-ids: "cri_BAD" is not an ACR Enterprise Edition instance ID (expected cri- followed by lower-case letters and digits, optionally prefixed by a region: cn-beijing:cri-xxxx)`,
    });
  });

  it('checks UPDATE too (typo of a known key)', () => {
    const v = validate(load('deployment-update-invalid'));
    expect(v).toMatchObject({ action: 'deny', code: 400 });
    expect((v as any).message).toContain('unknown annotation "k8s.aliyun.com/acr-service-arn": did you mean "k8s.aliyun.com/acr-service-arns"?');
  });

  it('warns when the annotations sit on the workload instead of its template', () => {
    const v = validate(load('deployment-annotations-on-workload-metadata'));
    expect(v).toEqual({ action: 'allow', warnings: ['Deployment has ACR annotations on its own metadata: move them to spec.template.metadata.annotations'] });
  });

  it('warns when no image is on the annotated instance\'s domains', () => {
    const v = validate(load('deployment-instance-domain-mismatch'));
    expect(v).toEqual({ action: 'allow', warnings: ['no container image is on a domain of ACR instance cri-abc123def4567890 (registry.example.com)'] });
  });

  it('warns when the template already lists the Secret the webhook would add', () => {
    const doc = load('deployment-valid');
    const template = doc.request.object.spec.template;
    const plan = planAdmission({ uid: 'x', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'team-a', dryRun: true, object: template }, rules);
    if (plan.action !== 'mutate') throw new Error('expected a mutate plan');
    template.spec.imagePullSecrets = [{ name: plan.specs[0]!.name }];
    const v = validate(doc);
    expect(v).toEqual({ action: 'allow', warnings: [`spec.template.spec.imagePullSecrets already lists ${plan.specs[0]!.name}, which the webhook manages`] });
  });

  it('keeps every warning under 120 characters: a longer one is cut to 116 and "..."', () => {
    const doc = load('deployment-instance-domain-mismatch');
    const many = Array.from({ length: 20 }, (_, i) => `d${i}.example.com`);
    const wide = servingRules(parseConfig({ defaultRegion: 'cn-hangzhou', registries: [{ instanceId: 'cri-abc123def4567890', domains: many }] }, { ownNamespace: 'x' }), 'x');
    const full = `no container image is on a domain of ACR instance cri-abc123def4567890 (${many.join(', ')})`;
    expect(validateWorkload(parseAdmissionReview(doc), wide)).toEqual({ action: 'allow', warnings: [`${full.slice(0, 116)}...`] });
    // 119 characters stay whole; 120 are cut.
    const withDomain = (domain: string) => servingRules(parseConfig({ defaultRegion: 'cn-hangzhou', registries: [{ instanceId: 'cri-abc123def4567890', domains: [domain] }] }, { ownNamespace: 'x' }), 'x');
    const text119 = `no container image is on a domain of ACR instance cri-abc123def4567890 (${'a'.repeat(34)}.example.com)`;
    expect(text119).toHaveLength(119);
    expect(validateWorkload(parseAdmissionReview(doc), withDomain(`${'a'.repeat(34)}.example.com`))).toEqual({ action: 'allow', warnings: [text119] });
    const text120 = `no container image is on a domain of ACR instance cri-abc123def4567890 (${'a'.repeat(35)}.example.com)`;
    expect(validateWorkload(parseAdmissionReview(doc), withDomain(`${'a'.repeat(35)}.example.com`))).toEqual({ action: 'allow', warnings: [`${text120.slice(0, 116)}...`] });
  });

  it('skips kinds it does not know and DELETE', () => {
    const doc = load('deployment-valid');
    doc.request.operation = 'DELETE';
    expect(validate(doc)).toEqual({ action: 'skip' });
    doc.request.operation = 'CREATE';
    doc.request.kind = { group: 'apps', version: 'v1', kind: 'ControllerRevision' };
    expect(validate(doc)).toEqual({ action: 'skip' });
  });
});
