// The ACK credential helper's ConfigMap (`kube-system/acr-configuration`), read as the helper reads it, so a
// cluster that replaces the helper with this webhook keeps its configuration. Fields and defaults (seed 001,
// "Use the aliyun-acr-credential-helper component"):
//   service-account     default "default"; "*" = every ServiceAccount; comma-separated names
//   watch-namespace     default "default"; "all" = every namespace; comma-separated names
//   expiring-threshold  default "15m": credentials are renewed this long before they expire
//   acr-registry-info   a YAML list of {instanceId, domains} (+ regionId, assumeRoleARN in later versions);
//                       empty: the Personal Edition registry of the cluster's region
//   acr-api-version, notify-email: accepted, not acted on (see `notHonoured`)
// Pure: the data in, a typed value (or a ConfigError naming the field) out.
import { parse as parseYaml } from 'yaml';
import { ConfigError, parseRegistries, type Fail, type RegistryConfig } from './config.js';
import { parseDuration } from './duration.js';
import type { HelperScope } from '../acr/credential-helper.js';

export const ACR_CONFIGURATION = { namespace: 'kube-system', name: 'acr-configuration' } as const;

export interface AcrConfiguration {
  scope: HelperScope;
  expiringThresholdMs: number;
  registries: RegistryConfig[];
  /** Fields present but not acted on, each with why: the one start-up notice lists them. */
  notHonoured: string[];
}

// Function declarations, not module constants or arrow consts: a value built when the module loads is outside
// every test's coverage, so Stryker's mutants of it go untested; a function body runs inside the test that calls it.
function known(): string[] {
  return ['service-account', 'watch-namespace', 'expiring-threshold', 'acr-registry-info', 'acr-api-version', 'notify-email'];
}
// A Map, so that a key such as `constructor` is an unknown field, not Object's prototype.
function entryKeys(): Map<string, string> {
  return new Map([['instanceId', 'instanceId'], ['domains', 'domains'], ['regionId', 'region'], ['assumeRoleARN', 'serviceArn']]);
}
/** The Enterprise Edition API version the webhook calls (Personal Edition's tokens use 2016-06-07). */
function apiVersion(): string {
  return '2018-12-01';
}
function kubernetesName(): RegExp {
  return /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;
}

export function parseAcrConfiguration(data: Readonly<Record<string, string>>, defaultRegion: string | undefined, source = `${ACR_CONFIGURATION.namespace}/${ACR_CONFIGURATION.name}`): AcrConfiguration {
  const fail: Fail = (field, detail) => {
    throw new ConfigError(field, detail, source);
  };
  const notHonoured: string[] = [];
  const fields = known();
  for (const key of Object.keys(data)) {
    if (fields.includes(key)) continue;
    const near = fields.find((k) => k.toLowerCase() === key.toLowerCase().replace(/_/g, '-'));
    if (near) fail(key, `unknown field: did you mean "${near}"?`);
    notHonoured.push(`${key} (not a field acr-pull-webhook knows; ignored)`);
  }

  const list = (field: string, all: string): '*' | string[] => {
    const raw = (data[field] ?? '').trim();
    if (raw === '') return ['default'];
    if (raw === all) return '*';
    const items = raw.split(',').map((s) => s.trim());
    items.forEach((item, i) => {
      if (item === all) fail(field, `"${all}" means every one and cannot be combined with names`);
      if (!kubernetesName().test(item)) fail(field, `item ${i + 1} ${JSON.stringify(item)} is not a Kubernetes name`);
    });
    return [...new Set(items)];
  };
  const serviceAccounts = list('service-account', '*');
  const namespaces = list('watch-namespace', 'all');

  let expiringThresholdMs = 15 * 60_000;
  const threshold = data['expiring-threshold']?.trim();
  if (threshold) {
    const ms = parseDuration(threshold);
    if (ms === undefined || ms <= 0) fail('expiring-threshold', `expected a duration such as 15m or 1h, got ${JSON.stringify(threshold)}`);
    expiringThresholdMs = ms!;
  }

  const version = data['acr-api-version']?.trim();
  const calls = apiVersion();
  if (version && version !== calls) {
    notHonoured.push(`acr-api-version ${JSON.stringify(version)} (the webhook calls Enterprise Edition ${calls} and Personal Edition 2016-06-07)`);
  }
  if (data['notify-email'] !== undefined) {
    notHonoured.push('notify-email (no mail is sent: failures are Warning Events on the ServiceAccount or Secret, and the metric acr_webhook_credential_helper_failures_total)');
  }

  return {
    scope: { serviceAccounts, namespaces: namespaces === '*' ? 'all' : namespaces },
    expiringThresholdMs,
    registries: parseRegistryInfo(data['acr-registry-info'], defaultRegion, fail, notHonoured),
    notHonoured,
  };
}

/** `acr-registry-info`: YAML in a string, each entry mapped onto the registry model of the configuration file. */
function parseRegistryInfo(text: string | undefined, defaultRegion: string | undefined, fail: Fail, notHonoured: string[]): RegistryConfig[] {
  const field = 'acr-registry-info';
  let doc: unknown;
  try {
    doc = parseYaml(text ?? '');
  } catch (e) {
    const first = (e as Error).message.split('\n')[0];
    return fail(field, `not valid YAML (${first}); indent each entry's fields under its "- ", e.g. "- instanceId: cri-xxx" then "  domains: a.example.com"`);
  }
  // Empty: "images are pulled from the default repository of the instance in the cluster's region".
  if (doc === null || doc === undefined || (Array.isArray(doc) && doc.length === 0)) {
    if (defaultRegion === undefined) {
      return fail(field, "empty means the cluster's region, and the webhook has none: set ALIBABA_CLOUD_REGION_ID (or defaultRegion in its configuration), or list an entry with regionId");
    }
    return [{ edition: 'personal', region: defaultRegion, chain: {} }];
  }
  if (!Array.isArray(doc)) return fail(field, 'expected a YAML list of entries ("- instanceId: ...")');
  const entries = doc.map((entry, i) => {
    const at = `${field}[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return fail(at, 'expected a mapping with instanceId and domains');
    const out: Record<string, unknown> = {};
    const keyMap = entryKeys();
    for (const [key, value] of Object.entries(entry as Record<string, unknown>)) {
      const target = keyMap.get(key);
      if (!target) {
        const near = [...keyMap.keys()].find((k) => k.toLowerCase() === key.toLowerCase());
        if (near) fail(`${at}.${key}`, `unknown field: did you mean "${near}"?`);
        notHonoured.push(`${at}.${key} (not a field acr-pull-webhook knows; ignored)`);
        continue;
      }
      if (value === null || value === undefined) continue;
      if (key === 'domains') {
        // The helper's form is one comma-separated string; a YAML list is taken too. Empty: every domain.
        const items = typeof value === 'string' ? value.split(',') : Array.isArray(value) ? value : fail(`${at}.domains`, 'expected comma-separated host names');
        const hosts = items.map((d, j) => (typeof d === 'string' ? d.trim() : fail(`${at}.domains[${j}]`, 'expected a host name'))).filter((d) => d !== '');
        if (hosts.length > 0) out.domains = hosts;
      } else if (typeof value !== 'string' && typeof value !== 'number') {
        fail(`${at}.${key}`, `expected a string, got ${JSON.stringify(value)}`);
      } else if (key === 'assumeRoleARN' || key === 'regionId') {
        // An empty string is how the helper's samples leave these unset.
        if (String(value).trim() !== '') out[target] = String(value).trim();
      } else {
        out[target] = String(value).trim();
      }
    }
    // The helper reads a missing instanceId as "" (Standard/Personal Edition).
    out.instanceId ??= '';
    return out;
  });
  // Errors name the helper's field names, not the configuration file's.
  const rename: Fail = (f, detail) => fail(f.replace(/\.region\b/, '.regionId').replace(/\.serviceArn\b/, '.assumeRoleARN'), detail.replace(/\bserviceArn\b/g, 'assumeRoleARN'));
  return parseRegistries(entries, defaultRegion, rename, field);
}
