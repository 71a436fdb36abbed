// The behaviour configuration: one YAML file (mounted from a ConfigMap), validated up front so a typo stops
// start-up with a message that points at the field instead of silently changing behaviour.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute } from 'node:path';
import { parseDuration } from './duration.js';
import type { LabelSelector, Policy, PolicyRule } from './policy.js';
import { APSARA_INSTANCE_ID, INSTANCE_ID, OIDC_PROVIDER_ARN, REGION, ROLE_ARN } from '../acr/ids.js';
import type { RoleChain } from '../acr/model.js';

/**
 * A registry served without annotations. The file says `instanceId: cri-...` (Enterprise Edition),
 * `instanceId: default` (Apsara Stack's one instance) or `instanceId: ""` (the Personal Edition registry of the
 * region), as the ACK credential helper's `acr-registry-info` does, so its entries map one to one.
 */
export type RegistryConfig = EnterpriseRegistryConfig | PersonalRegistryConfig;

interface RegistryConfigBase {
  region: string;
  /**
   * Host names served for this registry (and put into its Secrets). Undefined (omitted in the file): for an
   * Enterprise instance, every domain it has, looked up at run time (ListInstanceEndpoint + GetInstanceVpcEndpoint);
   * for Personal Edition, the region's default hosts (registry[-intl][-vpc].<region>.aliyuncs.com, crpi-*).
   */
  domains?: string[];
  /** Who obtains the token: {} is the webhook's own identity; the helper's `assumeRoleARN` is `serviceArn`. */
  chain: RoleChain;
}

export interface EnterpriseRegistryConfig extends RegistryConfigBase {
  edition: 'enterprise';
  instanceId: string;
}

export interface PersonalRegistryConfig extends RegistryConfigBase {
  edition: 'personal';
}

/** Finding the account's own registries with the webhook's identity (ECI's zero-configuration pull). */
export interface DiscoveryConfig {
  /** Off unless the file turns it on: see README "Discovery". */
  enabled: boolean;
  /** Regions whose Enterprise instances are listed and whose Personal Edition hosts are served. */
  regions: string[];
  /** How often the instance list is refreshed. */
  intervalMs: number;
  /** Least time between refreshes caused by images on unknown default domains of those regions. */
  missIntervalMs: number;
  /** Serve Personal Edition hosts of those regions with the webhook's own identity. */
  personalEdition: boolean;
}

/** Cloud endpoints from the file (private clouds such as Apsara Stack); the environment variables win when set. */
export interface EndpointsConfig {
  sts?: string;
  /** A URL template with `{region}`, or one URL per region. */
  cr?: string | Record<string, string>;
  ram?: string;
}

export interface WebhookConfig {
  /**
   * Region of instance IDs written without a region prefix: the file's value, else ALIBABA_CLOUD_REGION_ID.
   * No built-in default: a guessed region would look instances up in the wrong place; without one, unprefixed
   * IDs are denied with the fix, and configuration entries that need a region must give it.
   */
  defaultRegion?: string;
  registries: RegistryConfig[];
  discovery: DiscoveryConfig;
  /** Read at start only. */
  endpoints: EndpointsConfig;
  /** Globs; an empty include list serves every namespace not excluded. */
  namespaces: { include: string[]; exclude: string[] };
  /** Where ImageCache Secrets live; empty in the file means the webhook's own namespace. */
  imageCacheSecretNamespace: string;
  credentials: { sessionDurationSeconds: number; refreshThresholdMs: number; externalIds: Record<string, string>; cacheEntries: number };
  secrets: { idleTimeoutMs: number; refreshIntervalMs: number };
  /** Undefined: no policy, any well-formed annotation is served (like ECI; RAM trust policies still gate). */
  policy?: Policy;
  /**
   * The ACK credential helper's ConfigMap (`namespace/name`), read and acted on while it exists; undefined: not
   * read. Read at start only.
   */
  credentialHelper: { configMap?: { namespace: string; name: string } };
  /** Read by the kubelet credential provider only (src/credential-provider); the webhook ignores it. */
  credentialProvider: CredentialProviderConfig;
}

export interface CredentialProviderConfig {
  /** Absolute directory for the on-disk cache of STS sessions and registry tokens (0700, files 0600). */
  cacheDir: string;
  /** RRSA OIDC provider of the cluster (acs:ram::<uid>:oidc-provider/<name>): enables workload identity mode. */
  oidcProviderArn?: string;
}

export const DEFAULT_PROVIDER_CACHE_DIR = '/var/lib/acr-credential-provider';

export class ConfigError extends Error {
  constructor(readonly field: string, detail: string, source = 'configuration') {
    super(`${source}: ${field}: ${detail}`);
    this.name = 'ConfigError';
  }
}

const EXTERNAL_ID = /^[\w+=,.@:\/-]{2,1224}$/;
const HOST = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::\d{1,5})?$/;

export interface ConfigContext {
  /** The webhook's own namespace (POD_NAMESPACE). */
  ownNamespace: string;
  /** ALIBABA_CLOUD_REGION_ID, the default region when the file sets none. */
  regionFromEnv?: string;
}

export function loadConfigFile(path: string, ctx: ConfigContext): WebhookConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError('(file)', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, path);
  }
  let doc: unknown;
  try {
    doc = parseText(text);
  } catch (e) {
    throw new ConfigError('(file)', `not valid YAML: ${(e as Error).message.split('\n')[0]}`, path);
  }
  return parseConfig(doc, ctx, path);
}

/**
 * JSON is YAML: a file that parses as JSON skips loading the YAML parser, which costs the credential provider,
 * started once per image pull, a large share of its start-up time. The parser is loaded on first need only.
 */
function parseText(text: string): unknown {
  if (/^\s*\{/.test(text)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Not JSON after all (a YAML flow mapping): the YAML parser decides, and reports errors.
    }
  }
  const yaml = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yaml.parse(text, { prettyErrors: true }) ?? {};
}

/** Validates a parsed document; every error names the field it is about. */
export function parseConfig(doc: unknown, ctx: ConfigContext, source = 'configuration'): WebhookConfig {
  const fail = (field: string, detail: string): never => {
    throw new ConfigError(field, detail, source);
  };
  const root = object(doc, '(root)', fail);
  allowKeys(root, '(root)', ['defaultRegion', 'registries', 'discovery', 'endpoints', 'namespaces', 'imageCacheSecretNamespace', 'credentials', 'secrets', 'policy', 'credentialHelper', 'credentialProvider'], fail);

  const fromFile = root.defaultRegion !== undefined;
  const defaultRegion = fromFile ? str(root.defaultRegion, 'defaultRegion', fail) : ctx.regionFromEnv || undefined;
  if (defaultRegion !== undefined && !REGION.test(defaultRegion)) {
    fail(fromFile ? 'defaultRegion' : 'defaultRegion (from ALIBABA_CLOUD_REGION_ID)', `${JSON.stringify(defaultRegion)} is not a region ID such as cn-hangzhou`);
  }

  const registries = parseRegistries(root.registries ?? [], defaultRegion, fail);
  const discovery = parseDiscovery(root.discovery ?? {}, defaultRegion, fail);
  const endpoints = parseEndpoints(root.endpoints ?? {}, fail);

  const ns = object(root.namespaces ?? {}, 'namespaces', fail);
  allowKeys(ns, 'namespaces', ['include', 'exclude'], fail);
  const include = array(ns.include ?? [], 'namespaces.include', fail).map((g, i) => str(g, `namespaces.include[${i}]`, fail));
  const exclude = array(ns.exclude ?? [], 'namespaces.exclude', fail).map((g, i) => str(g, `namespaces.exclude[${i}]`, fail));

  const imageCacheSecretNamespace = str(root.imageCacheSecretNamespace ?? '', 'imageCacheSecretNamespace', fail) || ctx.ownNamespace;

  const helper = object(root.credentialHelper ?? {}, 'credentialHelper', fail);
  allowKeys(helper, 'credentialHelper', ['configMap'], fail);
  const location = str(helper.configMap ?? 'kube-system/acr-configuration', 'credentialHelper.configMap', fail).trim();
  const m = /^([a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)\/([a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?)$/.exec(location);
  if (location !== '' && !m) fail('credentialHelper.configMap', `${JSON.stringify(location)} is not namespace/name (or "" to not read one)`);
  const credentialHelper = m ? { configMap: { namespace: m[1]!, name: m[2]! } } : {};

  const cred = object(root.credentials ?? {}, 'credentials', fail);
  allowKeys(cred, 'credentials', ['sessionDurationSeconds', 'refreshThreshold', 'externalIds', 'cacheEntries'], fail);
  const sessionDurationSeconds = int(cred.sessionDurationSeconds ?? 3600, 'credentials.sessionDurationSeconds', 900, 43200, fail);
  const refreshThresholdMs = duration(cred.refreshThreshold ?? '15m', 'credentials.refreshThreshold', fail);
  const cacheEntries = int(cred.cacheEntries ?? 1000, 'credentials.cacheEntries', 10, 100_000, fail);
  if (refreshThresholdMs >= sessionDurationSeconds * 1000) {
    fail('credentials.refreshThreshold', 'must be shorter than credentials.sessionDurationSeconds, or every token is stale at birth');
  }

  const externalIds: Record<string, string> = {};
  for (const [arn, id] of Object.entries(object(cred.externalIds ?? {}, 'credentials.externalIds', fail))) {
    const field = `credentials.externalIds[${JSON.stringify(arn)}]`;
    if (!ROLE_ARN.test(arn)) fail(field, 'keys must be RAM role ARNs (acs:ram::<account id>:role/<name>)');
    const value = str(id, field, fail);
    if (!EXTERNAL_ID.test(value)) fail(field, 'an ExternalId is 2-1224 characters of letters, digits and +=,.@:/-_');
    externalIds[arn] = value;
  }

  const sec = object(root.secrets ?? {}, 'secrets', fail);
  allowKeys(sec, 'secrets', ['idleTimeout', 'refreshInterval'], fail);
  const idleTimeoutMs = duration(sec.idleTimeout ?? '24h', 'secrets.idleTimeout', fail);
  const refreshIntervalMs = duration(sec.refreshInterval ?? '30s', 'secrets.refreshInterval', fail);

  const cp = object(root.credentialProvider ?? {}, 'credentialProvider', fail);
  allowKeys(cp, 'credentialProvider', ['cacheDir', 'oidcProviderArn'], fail);
  const cacheDir = str(cp.cacheDir ?? DEFAULT_PROVIDER_CACHE_DIR, 'credentialProvider.cacheDir', fail);
  if (!isAbsolute(cacheDir)) fail('credentialProvider.cacheDir', `${JSON.stringify(cacheDir)} is not an absolute path`);
  const credentialProvider: CredentialProviderConfig = { cacheDir };
  if (cp.oidcProviderArn !== undefined) {
    const arn = str(cp.oidcProviderArn, 'credentialProvider.oidcProviderArn', fail);
    if (!OIDC_PROVIDER_ARN.test(arn)) fail('credentialProvider.oidcProviderArn', `${JSON.stringify(arn)} is not an OIDC provider ARN (acs:ram::<account id>:oidc-provider/<name>)`);
    credentialProvider.oidcProviderArn = arn;
  }

  return {
    ...(defaultRegion === undefined ? {} : { defaultRegion }),
    registries,
    discovery,
    endpoints,
    namespaces: { include, exclude },
    imageCacheSecretNamespace,
    credentialHelper,
    credentials: { sessionDurationSeconds, refreshThresholdMs, externalIds, cacheEntries },
    secrets: { idleTimeoutMs, refreshIntervalMs },
    ...(root.policy === undefined ? {} : { policy: parsePolicy(root.policy, defaultRegion, fail) }),
    credentialProvider,
  };
}

/** Why a field needs its own region: there is no default to fall back on. */
const NO_REGION = 'no defaultRegion in the file and ALIBABA_CLOUD_REGION_ID is not set';

/**
 * The `registries` list: every error names the entry and field. Exported for other sources of the same model
 * (the credential helper's ConfigMap), which pass their own `fail` and field prefix.
 */
export function parseRegistries(doc: unknown, defaultRegion: string | undefined, fail: Fail, at = 'registries'): RegistryConfig[] {
  const registries = array(doc, at, fail).map((r, i): RegistryConfig => {
    const here = `${at}[${i}]`;
    const o = object(r, here, fail);
    allowKeys(o, here, ['instanceId', 'region', 'domains', 'serviceArn', 'userArn'], fail);
    if (!('instanceId' in o)) fail(`${here}.instanceId`, 'required: cri-... for an Enterprise Edition instance, "default" on Apsara Stack, "" for Personal Edition');
    const instanceId = str(o.instanceId, `${here}.instanceId`, fail);
    if (instanceId !== '' && instanceId !== APSARA_INSTANCE_ID && !INSTANCE_ID.test(instanceId)) {
      fail(`${here}.instanceId`, `${JSON.stringify(instanceId)} is not an instance ID (cri-..., "default" on Apsara Stack, "" for Personal Edition)`);
    }
    if (o.region === undefined && defaultRegion === undefined) fail(`${here}.region`, `required: ${NO_REGION}`);
    const region = str(o.region ?? defaultRegion, `${here}.region`, fail);
    if (!REGION.test(region)) fail(`${here}.region`, `${JSON.stringify(region)} is not a region ID`);
    let domains: string[] | undefined;
    if (o.domains !== undefined) {
      domains = array(o.domains, `${here}.domains`, fail).map((d, j) => {
        const host = str(d, `${here}.domains[${j}]`, fail).trim().toLowerCase();
        if (!HOST.test(host)) fail(`${here}.domains[${j}]`, `${JSON.stringify(host)} is not a host name`);
        return host;
      });
      if (domains.length === 0) fail(`${here}.domains`, 'list at least one domain, or leave the field out to serve every domain of the registry');
    }
    const chain: RoleChain = {};
    for (const key of ['serviceArn', 'userArn'] as const) {
      if (o[key] === undefined) continue;
      const arn = str(o[key], `${here}.${key}`, fail);
      if (!ROLE_ARN.test(arn)) fail(`${here}.${key}`, `${JSON.stringify(arn)} is not a RAM role ARN (acs:ram::<account id>:role/<name>)`);
      chain[key] = arn;
    }
    if (chain.userArn && !chain.serviceArn) fail(`${here}.userArn`, 'needs serviceArn: the user role is assumed with the service role\'s credentials');
    const base = { region, ...(domains ? { domains } : {}), chain };
    return instanceId === '' ? { edition: 'personal', ...base } : { edition: 'enterprise', instanceId, ...base };
  });
  const seen = new Map<string, number>();
  const owner = new Map<string, number>();
  registries.forEach((r, i) => {
    // One entry per registry: two would race for the same hosts with possibly different chains.
    const key = r.edition === 'personal' ? `personal ${r.region}` : `${r.region}:${r.instanceId}`;
    const first = seen.get(key);
    if (first !== undefined) fail(`${at}[${i}]`, `${key} is already listed by ${at}[${first}]`);
    seen.set(key, i);
    r.domains?.forEach((d) => {
      const other = owner.get(d);
      if (other !== undefined) fail(`${at}[${i}].domains`, `${d} is already listed by ${at}[${other}]`);
      owner.set(d, i);
    });
  });
  return registries;
}

function parseDiscovery(doc: unknown, defaultRegion: string | undefined, fail: Fail): DiscoveryConfig {
  const o = object(doc, 'discovery', fail);
  allowKeys(o, 'discovery', ['enabled', 'regions', 'interval', 'missInterval', 'personalEdition'], fail);
  const enabled = bool(o.enabled ?? false, 'discovery.enabled', fail);
  if (enabled && o.regions === undefined && defaultRegion === undefined) fail('discovery.regions', `required: ${NO_REGION}`);
  const regionsDoc = o.regions ?? (defaultRegion === undefined ? [] : [defaultRegion]);
  const regions = array(regionsDoc, 'discovery.regions', fail).map((r, i) => {
    const region = str(r, `discovery.regions[${i}]`, fail);
    if (!REGION.test(region)) fail(`discovery.regions[${i}]`, `${JSON.stringify(region)} is not a region ID`);
    return region;
  });
  if (o.regions !== undefined && regions.length === 0) fail('discovery.regions', 'list at least one region, or leave the field out for the default region');
  const intervalMs = duration(o.interval ?? '10m', 'discovery.interval', fail);
  if (intervalMs < 60_000) fail('discovery.interval', 'at least 1m: each refresh lists every instance of every region');
  const missIntervalMs = duration(o.missInterval ?? '30s', 'discovery.missInterval', fail);
  if (missIntervalMs < 1000) fail('discovery.missInterval', 'at least 1s: every Pod of a foreign instance could otherwise cause a refresh');
  const personalEdition = bool(o.personalEdition ?? true, 'discovery.personalEdition', fail);
  return { enabled, regions: [...new Set(regions)], intervalMs, missIntervalMs, personalEdition };
}

const URL_RE = /^https?:\/\/[^\s/]+(\/\S*)?$/;

function parseEndpoints(doc: unknown, fail: Fail): EndpointsConfig {
  const o = object(doc, 'endpoints', fail);
  allowKeys(o, 'endpoints', ['sts', 'cr', 'ram'], fail);
  const url = (v: unknown, field: string) => {
    const s = str(v, field, fail);
    if (!URL_RE.test(s)) fail(field, `${JSON.stringify(s)} is not a full URL with scheme (https://...)`);
    return s;
  };
  const out: EndpointsConfig = {};
  if (o.sts !== undefined) out.sts = url(o.sts, 'endpoints.sts');
  if (o.ram !== undefined) out.ram = url(o.ram, 'endpoints.ram');
  if (typeof o.cr === 'string') out.cr = url(o.cr, 'endpoints.cr');
  else if (o.cr !== undefined) {
    const byRegion: Record<string, string> = {};
    for (const [region, v] of Object.entries(object(o.cr, 'endpoints.cr', fail))) {
      if (!REGION.test(region)) fail(`endpoints.cr.${region}`, 'keys must be region IDs');
      byRegion[region] = url(v, `endpoints.cr.${region}`);
    }
    out.cr = byRegion;
  }
  return out;
}

function parsePolicy(doc: unknown, defaultRegion: string | undefined, fail: Fail): Policy {
  const p = object(doc, 'policy', fail);
  allowKeys(p, 'policy', ['rules'], fail);
  const names = new Set<string>();
  const rules = array(p.rules, 'policy.rules', fail).map((r, i): PolicyRule => {
    const at = `policy.rules[${i}]`;
    const o = object(r, at, fail);
    allowKeys(o, at, ['name', 'namespaces', 'serviceArns', 'userArns', 'instances'], fail);
    const name = str(o.name, `${at}.name`, fail);
    if (names.has(name)) fail(`${at}.name`, `${JSON.stringify(name)} is used by another rule`);
    names.add(name);
    const ns = object(o.namespaces, `${at}.namespaces`, fail);
    allowKeys(ns, `${at}.namespaces`, ['names', 'globs', 'selector'], fail);
    const strings = (v: unknown, field: string) => array(v, field, fail).map((x, j) => str(x, `${field}[${j}]`, fail));
    const namespaces: PolicyRule['namespaces'] = {};
    if (ns.names !== undefined) namespaces.names = strings(ns.names, `${at}.namespaces.names`);
    if (ns.globs !== undefined) namespaces.globs = strings(ns.globs, `${at}.namespaces.globs`);
    if (ns.selector !== undefined) namespaces.selector = parseSelector(ns.selector, `${at}.namespaces.selector`, fail);
    if (!namespaces.names && !namespaces.globs && !namespaces.selector) fail(`${at}.namespaces`, 'give names, globs or a selector');
    const arns = (key: 'serviceArns' | 'userArns') => {
      if (o[key] === undefined) return undefined;
      return strings(o[key], `${at}.${key}`).map((a, j) => {
        if (a !== '*' && !ROLE_ARN.test(a)) fail(`${at}.${key}[${j}]`, `${JSON.stringify(a)} is not a RAM role ARN or "*"`);
        return a;
      });
    };
    const instances = o.instances === undefined ? undefined : strings(o.instances, `${at}.instances`).map((x, j) => {
      if (x === '*') return x;
      const m = /^(?:([a-z0-9-]+):)?(cri-[a-z0-9]+)$/.exec(x);
      if (m) {
        const region = m[1] ?? defaultRegion;
        if (region === undefined) fail(`${at}.instances[${j}]`, `${JSON.stringify(x)} has no region prefix (cn-beijing:${x}), and there is ${NO_REGION}`);
        return `${region}:${m[2]}`;
      }
      if (HOST.test(x.toLowerCase())) return x.toLowerCase();
      return fail(`${at}.instances[${j}]`, `${JSON.stringify(x)} is not region:cri-..., a registry host or "*"`);
    });
    return { name, namespaces, serviceArns: arns('serviceArns'), userArns: arns('userArns'), instances };
  });
  return { rules };
}

function parseSelector(doc: unknown, field: string, fail: Fail): LabelSelector {
  const o = object(doc, field, fail);
  allowKeys(o, field, ['matchLabels', 'matchExpressions'], fail);
  const selector: LabelSelector = {};
  if (o.matchLabels !== undefined) {
    selector.matchLabels = {};
    for (const [k, v] of Object.entries(object(o.matchLabels, `${field}.matchLabels`, fail))) selector.matchLabels[k] = str(v, `${field}.matchLabels.${k}`, fail);
  }
  if (o.matchExpressions !== undefined) {
    selector.matchExpressions = array(o.matchExpressions, `${field}.matchExpressions`, fail).map((e, i) => {
      const at = `${field}.matchExpressions[${i}]`;
      const x = object(e, at, fail);
      allowKeys(x, at, ['key', 'operator', 'values'], fail);
      const operator = str(x.operator, `${at}.operator`, fail);
      if (!['In', 'NotIn', 'Exists', 'DoesNotExist'].includes(operator)) fail(`${at}.operator`, 'expected In, NotIn, Exists or DoesNotExist');
      const values = x.values === undefined ? undefined : array(x.values, `${at}.values`, fail).map((v, j) => str(v, `${at}.values[${j}]`, fail));
      return { key: str(x.key, `${at}.key`, fail), operator: operator as 'In', ...(values ? { values } : {}) };
    });
  }
  return selector;
}

export type Fail = (field: string, detail: string) => never;

function object(v: unknown, field: string, fail: Fail): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(field, 'expected a mapping');
  return v as Record<string, unknown>;
}

function array(v: unknown, field: string, fail: Fail): unknown[] {
  if (!Array.isArray(v)) return fail(field, 'expected a list');
  return v;
}

function str(v: unknown, field: string, fail: Fail): string {
  if (typeof v !== 'string') return fail(field, `expected a string, got ${JSON.stringify(v) ?? typeof v}`);
  return v;
}

function bool(v: unknown, field: string, fail: Fail): boolean {
  if (typeof v !== 'boolean') return fail(field, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function int(v: unknown, field: string, min: number, max: number, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    return fail(field, `expected a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function duration(v: unknown, field: string, fail: Fail): number {
  const ms = typeof v === 'string' ? parseDuration(v) : undefined;
  if (ms === undefined || ms <= 0) return fail(field, `expected a duration such as 90s, 15m or 24h, got ${JSON.stringify(v)}`);
  return ms;
}

function allowKeys(o: Record<string, unknown>, field: string, allowed: string[], fail: Fail): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) fail(field === '(root)' ? k : `${field}.${k}`, `unknown field (known: ${allowed.join(', ')})`);
  }
}
