// npm run release: the one-file install (install.yaml) and the CHANGELOG entry for package.json's version.
//
// install.yaml is the Helm chart rendered with its cert-manager option and the Namespace included: one
// `kubectl apply -f install.yaml` on a cluster that runs cert-manager. Not the self-signed option: that would bake
// one CA and private key into a file everyone downloads.
//
//   npm run release [-- --image <repository>] [--out <dir>] [--changelog <file>] [--date YYYY-MM-DD]
//
// helm: --helm, $HELM, or the pinned one test/tools/build.sh builds (built here when missing).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHART = join(ROOT, 'charts/acr-pull-webhook');
const NAMESPACE = 'acr-pull-webhook';

interface Options {
  image: string;
  out: string;
  changelog: string;
  date: string;
  helm?: string;
}

class ReleaseError extends Error {}

function options(argv: string[]): Options {
  const o: Options = { image: 'acr-pull-webhook', out: join(ROOT, 'release'), changelog: join(ROOT, 'CHANGELOG.md'), date: new Date().toISOString().slice(0, 10), helm: process.env.HELM };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (!['--image', '--out', '--changelog', '--date', '--helm'].includes(flag) || value === undefined) {
      throw new ReleaseError(`unknown or incomplete argument ${JSON.stringify(flag)} (usage: --image <repository> --out <dir> --changelog <file> --date YYYY-MM-DD --helm <path>)`);
    }
    i++;
    if (flag === '--date' && !/^\d{4}-\d{2}-\d{2}$/.test(value)) throw new ReleaseError(`--date must be YYYY-MM-DD, got ${JSON.stringify(value)}`);
    if (flag === '--image') o.image = value;
    else if (flag === '--out') o.out = resolve(value);
    else if (flag === '--changelog') o.changelog = resolve(value);
    else if (flag === '--date') o.date = value;
    else o.helm = value;
  }
  return o;
}

/** Chart.yaml's version and appVersion are the package's: one version number per release. */
function checkVersions(version: string): void {
  const chart = readFileSync(join(CHART, 'Chart.yaml'), 'utf8');
  const field = (name: string) => new RegExp(`^${name}:\\s*"?([^"\\s]+)"?\\s*$`, 'm').exec(chart)?.[1];
  for (const name of ['version', 'appVersion']) {
    if (field(name) !== version) throw new ReleaseError(`charts/acr-pull-webhook/Chart.yaml ${name} is ${field(name)}, package.json says ${version}: set both to the release's version`);
  }
}

function helmBinary(explicit?: string): string {
  if (explicit) return explicit;
  const pinned = join(ROOT, 'test/e2e/.bin/helm/helm');
  if (!existsSync(pinned)) execFileSync('bash', [join(ROOT, 'test/tools/build.sh'), 'helm'], { stdio: 'inherit' });
  return pinned;
}

export function renderInstall(helm: string, version: string, image: string): string {
  const r = spawnSync(
    helm,
    [
      'template', 'acr-pull-webhook', CHART, '--namespace', NAMESPACE,
      '--set', 'namespace.create=true',
      '--set', 'certificates.mode=cert-manager',
      '--set-string', `image.repository=${image}`,
      '--set-string', `image.tag=${version}`,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new ReleaseError(`helm template failed: ${r.stderr || r.error?.message}`);
  const docs = parseAllDocuments(r.stdout);
  const bad = docs.find((d) => d.errors.length > 0);
  if (bad) throw new ReleaseError(`helm template printed invalid YAML: ${bad.errors[0]!.message}`);
  if (/PRIVATE KEY/.test(r.stdout)) throw new ReleaseError('the rendered install holds a private key; a release file must not');
  const header = [
    `# acr-pull-webhook ${version}: everything in one file. Needs cert-manager (it issues the serving certificate).`,
    '#   kubectl apply -f install.yaml',
    '# Configuration: edit the ConfigMap acr-pull-webhook-config (applied without a restart). Upgrade: apply the',
    "# next release's file. Uninstall: kubectl delete -f install.yaml (see the README for what stays).",
    '',
  ].join('\n');
  return header + r.stdout.replace(/^---\n/, '');
}

/** Moves the notes under "## [Unreleased]" into a section for this version; an existing section is kept. */
export function changelogWithRelease(text: string, version: string, date: string): { text: string; changed: boolean } {
  if (new RegExp(`^## \\[${version.replace(/\./g, '\\.')}\\]`, 'm').test(text)) return { text, changed: false };
  const m = /^## \[Unreleased\][^\n]*\n([\s\S]*?)(?=^## \[|(?![\s\S]))/m.exec(text);
  if (!m) throw new ReleaseError('CHANGELOG.md has no "## [Unreleased]" section to release');
  const notes = m[1]!.trim();
  if (!notes) throw new ReleaseError(`CHANGELOG.md: nothing under "## [Unreleased]" to release as ${version}`);
  const section = `## [Unreleased]\n\n## [${version}] - ${date}\n\n${notes}\n\n`;
  return { text: text.slice(0, m.index) + section + text.slice(m.index + m[0].length), changed: true };
}

function main(): void {
  const o = options(process.argv.slice(2));
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
  checkVersions(version);
  const install = renderInstall(helmBinary(o.helm), version, o.image);
  mkdirSync(o.out, { recursive: true });
  const file = join(o.out, 'install.yaml');
  writeFileSync(file, install);
  const changelog = changelogWithRelease(readFileSync(o.changelog, 'utf8'), version, o.date);
  if (changelog.changed) writeFileSync(o.changelog, changelog.text);
  const shown = (p: string) => (relative(process.cwd(), p).startsWith('..') ? p : relative(process.cwd(), p));
  console.log(`release ${version}: wrote ${shown(file)} (image ${o.image}:${version})`);
  console.log(changelog.changed ? `release ${version}: ${shown(o.changelog)} has its section, dated ${o.date}` : `release ${version}: ${shown(o.changelog)} already has a section for ${version}; left as it is`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (e) {
    console.error(`release: ${(e as Error).message}`);
    process.exit(e instanceof ReleaseError ? 2 : 1);
  }
}
