// Which registry an image reference points at, and what an ACR host name says about its instance.

/** The registry host of an image reference, lower-cased; Docker Hub for bare names like `nginx` or `library/nginx`. */
export function registryHost(image: string): string {
  const slash = image.indexOf('/');
  if (slash <= 0) return 'docker.io';
  const first = image.slice(0, slash);
  // The Docker rule: the first component is a host only if it looks like one.
  if (first.includes('.') || first.includes(':') || first === 'localhost') return first.toLowerCase();
  return 'docker.io';
}

export type AcrHost =
  | { kind: 'enterprise'; instanceName: string; region: string; vpc: boolean }
  | { kind: 'personal'; region: string };

const ENTERPRISE = /^([a-z0-9](?:[a-z0-9-]{1,28}[a-z0-9])?)-registry(-vpc)?\.([a-z0-9-]{2,40})\.cr\.aliyuncs\.com$/;
const PERSONAL_CLASSIC = /^registry(?:-intl)?(?:-vpc|-internal)?\.([a-z0-9-]{2,40})\.aliyuncs\.com$/;
const PERSONAL_CRPI = /^crpi-[a-z0-9]+(?:-vpc)?\.([a-z0-9-]{2,40})\.personal\.cr\.aliyuncs\.com$/;

/** Classifies an ACR default domain; custom domains (and everything else) give undefined. */
export function parseAcrHost(host: string): AcrHost | undefined {
  if (!host.endsWith('.aliyuncs.com')) return undefined;
  let m = ENTERPRISE.exec(host);
  if (m) return { kind: 'enterprise', instanceName: m[1]!, vpc: m[2] !== undefined, region: m[3]! };
  m = PERSONAL_CRPI.exec(host) ?? PERSONAL_CLASSIC.exec(host);
  if (m) return { kind: 'personal', region: m[1]! };
  return undefined;
}
