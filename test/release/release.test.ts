// npm run release, run as users run it (the compiled script, the pinned helm): install.yaml is the chart with
// cert-manager certificates and the Namespace, without any private key, and the CHANGELOG gets the version's
// section once. (npm run e2e applies the file to a real API server.)
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { changelogWithRelease } from '../../scripts/release.js';
import { HELM, type K8sObject } from '../chart/helm.js';

const SCRIPT = resolve('dist/scripts/release.js');
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));

describe('changelogWithRelease', () => {
  const text = '# Changelog\n\nIntro.\n\n## [Unreleased]\n\n### Added\n- a thing\n\n## [0.0.9] - 2025-01-01\n\n- old\n';

  it('moves the Unreleased notes under the version, leaving an empty Unreleased above', () => {
    const r = changelogWithRelease(text, '1.2.3', '2026-02-03');
    expect(r.changed).toBe(true);
    expect(r.text).toBe('# Changelog\n\nIntro.\n\n## [Unreleased]\n\n## [1.2.3] - 2026-02-03\n\n### Added\n- a thing\n\n## [0.0.9] - 2025-01-01\n\n- old\n');
  });

  it('keeps an existing section for the version as it is', () => {
    const once = changelogWithRelease(text, '1.2.3', '2026-02-03').text;
    expect(changelogWithRelease(once, '1.2.3', '2026-03-04')).toEqual({ text: once, changed: false });
  });

  it('refuses to release nothing, or without an Unreleased section', () => {
    expect(() => changelogWithRelease('# Changelog\n\n## [Unreleased]\n\n## [0.0.9] - 2025-01-01\n', '1.0.0', '2026-01-01')).toThrow(/nothing under/);
    expect(() => changelogWithRelease('# Changelog\n', '1.0.0', '2026-01-01')).toThrow(/no "## \[Unreleased\]"/);
  });
});

describe.runIf(HELM.run)(`npm run release${HELM.note}`, () => {
  let dir: string;
  let run: ReturnType<typeof spawnSync>;
  let objects: K8sObject[];
  let text: string;
  beforeAll(() => {
    if (!existsSync(SCRIPT)) throw new Error(`${SCRIPT} is missing: npm run build (npm test does it first)`);
    dir = mkdtempSync(join(tmpdir(), 'acr-release-'));
    copyFileSync('CHANGELOG.md', join(dir, 'CHANGELOG.md'));
    run = spawnSync(process.execPath, [SCRIPT, '--out', join(dir, 'out'), '--changelog', join(dir, 'CHANGELOG.md'), '--date', '2026-01-02', '--image', 'registry.example.com/team/acr-pull-webhook'], {
      encoding: 'utf8',
      env: { ...process.env, HELM: HELM.path },
    });
    text = readFileSync(join(dir, 'out/install.yaml'), 'utf8');
    objects = parseAllDocuments(text).map((d) => d.toJS()).filter((o) => o !== null);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('says what it wrote and exits 0', () => {
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain(`release ${pkg.version}: wrote`);
    expect(run.status).toBe(0);
  });

  it('install.yaml: the Namespace first, cert-manager certificates, the webhooks waiting for their CA, the image at this version', () => {
    expect(text.split('\n')[1]).toBe('#   kubectl apply -f install.yaml');
    expect(objects[0]).toMatchObject({ kind: 'Namespace', metadata: { name: 'acr-pull-webhook', labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } });
    const kinds = objects.map((o) => o.kind);
    for (const k of ['ServiceAccount', 'ConfigMap', 'ClusterRole', 'Deployment', 'Service', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'Certificate', 'Issuer']) expect(kinds, k).toContain(k);
    const deployment = objects.find((o) => o.kind === 'Deployment');
    expect(deployment.spec.template.spec.containers[0].image).toBe(`registry.example.com/team/acr-pull-webhook:${pkg.version}`);
    for (const o of objects.filter((x) => x.kind.endsWith('WebhookConfiguration'))) {
      expect(o.metadata.annotations['cert-manager.io/inject-ca-from']).toBe('acr-pull-webhook/acr-pull-webhook-serving');
    }
  });

  it('install.yaml: the ServiceAccount webhook and the credential helper’s grant of manifests/base', () => {
    const mwc = objects.find((o) => o.kind === 'MutatingWebhookConfiguration');
    expect(mwc.webhooks.map((w: K8sObject) => w.name)).toEqual(['annotated', 'default', 'serviceaccounts'].map((w) => `${w}.acr-pull-webhook.k8s.aliyun.com`));
    const clusterRole = objects.find((o) => o.kind === 'ClusterRole');
    expect(clusterRole.rules).toContainEqual({ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['list', 'watch', 'patch'] });
    for (const kind of ['Role', 'RoleBinding']) {
      expect(objects.find((o) => o.kind === kind && o.metadata.name === 'acr-pull-webhook-credential-helper')?.metadata.namespace, kind).toBe('kube-system');
    }
    // The Namespace still comes first: everything in it needs it.
    expect(objects.findIndex((o) => o.kind === 'Namespace')).toBe(0);
  });

  it('install.yaml holds no key and no Secret: everyone downloads the same file', () => {
    expect(text).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
  });

  it('the CHANGELOG gets the version’s section, dated, with the notes that were Unreleased', () => {
    const before = readFileSync('CHANGELOG.md', 'utf8');
    const after = readFileSync(join(dir, 'CHANGELOG.md'), 'utf8');
    expect(after).toContain(`## [Unreleased]\n\n## [${pkg.version}] - 2026-01-02\n\n### Added\n`);
    expect(after.length).toBeGreaterThan(before.length);
    // A second run leaves it be and says so.
    const again = spawnSync(process.execPath, [SCRIPT, '--out', join(dir, 'out'), '--changelog', join(dir, 'CHANGELOG.md')], { encoding: 'utf8', env: { ...process.env, HELM: HELM.path } });
    expect(again.stdout).toContain(`already has a section for ${pkg.version}`);
    expect(readFileSync(join(dir, 'CHANGELOG.md'), 'utf8')).toBe(after);
  });

  it('bad arguments stop it with a usage message and exit 2', () => {
    const r = spawnSync(process.execPath, [SCRIPT, '--date', 'tomorrow'], { encoding: 'utf8' });
    expect(r.stderr).toContain('--date must be YYYY-MM-DD');
    expect(r.status).toBe(2);
  });
});
