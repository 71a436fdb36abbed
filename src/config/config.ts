// The behaviour configuration: one YAML file (mounted from a ConfigMap), validated up front so a typo stops
// start-up with a message that points at the field instead of silently changing behaviour.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from './duration.js';

export interface RegistryConfig {
  instanceId: string;
  region: string;
  /** Host names served for this instance without annotations (and put into its Secrets). */
  domains: string[];
}

export interface WebhookConfig {
  defaultRegion: string;
  registries: RegistryConfig[];
  namespaces: { exclude: string[] };
  /** Where ImageCache Secrets live; empty in the file means the webhook's own namespace. */
  imageCacheSecretNamespace: string;
  credentials: { sessionDurationSeconds: number; refreshThresholdMs: number };
  secrets: { idleTimeoutMs: number };
}

export class ConfigError extends Error {
  constructor(readonly field: string, detail: string, source = 'configuration') {
    super(`${source}: ${field}: ${detail}`);
    this.name = 'ConfigError';
  }
}

const INSTANCE_ID = /^cri-[a-z0-9]{1,60}$/;
const REGION = /^[a-z]{2,8}(?:-[a-z0-9]{1,20}){1,4}$/;
const HOST = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::\d{1,5})?$/;

export interface ConfigContext {
  /** The webhook's own namespace (POD_NAMESPACE). */
  ownNamespace: string;
  /** ALIBABA_CLOUD_REGION_ID, the default when the file sets none. */
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
    doc = parseYaml(text, { prettyErrors: true }) ?? {};
  } catch (e) {
    throw new ConfigError('(file)', `not valid YAML: ${(e as Error).message.split('\n')[0]}`, path);
  }
  return parseConfig(doc, ctx, path);
}

/** Validates a parsed document; every error names the field it is about. */
export function parseConfig(doc: unknown, ctx: ConfigContext, source = 'configuration'): WebhookConfig {
  const fail = (field: string, detail: string): never => {
    throw new ConfigError(field, detail, source);
  };
  const root = object(doc, '(root)', fail);
  allowKeys(root, '(root)', ['defaultRegion', 'registries', 'namespaces', 'imageCacheSecretNamespace', 'credentials', 'secrets'], fail);

  const defaultRegion = str(root.defaultRegion ?? ctx.regionFromEnv ?? 'cn-hangzhou', 'defaultRegion', fail);
  if (!REGION.test(defaultRegion)) fail('defaultRegion', `${JSON.stringify(defaultRegion)} is not a region ID such as cn-hangzhou`);

  const registries = array(root.registries ?? [], 'registries', fail).map((r, i) => {
    const at = `registries[${i}]`;
    const o = object(r, at, fail);
    allowKeys(o, at, ['instanceId', 'region', 'domains'], fail);
    const instanceId = str(o.instanceId, `${at}.instanceId`, fail);
    if (!INSTANCE_ID.test(instanceId)) fail(`${at}.instanceId`, `${JSON.stringify(instanceId)} is not an instance ID (cri-...)`);
    const region = str(o.region ?? defaultRegion, `${at}.region`, fail);
    if (!REGION.test(region)) fail(`${at}.region`, `${JSON.stringify(region)} is not a region ID`);
    const domains = array(o.domains, `${at}.domains`, fail).map((d, j) => {
      const host = str(d, `${at}.domains[${j}]`, fail).toLowerCase();
      if (!HOST.test(host)) fail(`${at}.domains[${j}]`, `${JSON.stringify(host)} is not a host name`);
      return host;
    });
    if (domains.length === 0) fail(`${at}.domains`, 'list at least one domain the instance is reached by');
    return { instanceId, region, domains };
  });
  const owner = new Map<string, number>();
  registries.forEach((r, i) =>
    r.domains.forEach((d) => {
      const first = owner.get(d);
      if (first !== undefined) fail(`registries[${i}].domains`, `${d} is already listed by registries[${first}]`);
      owner.set(d, i);
    }),
  );

  const ns = object(root.namespaces ?? {}, 'namespaces', fail);
  allowKeys(ns, 'namespaces', ['exclude'], fail);
  const exclude = array(ns.exclude ?? [], 'namespaces.exclude', fail).map((g, i) => str(g, `namespaces.exclude[${i}]`, fail));

  const imageCacheSecretNamespace = str(root.imageCacheSecretNamespace ?? '', 'imageCacheSecretNamespace', fail) || ctx.ownNamespace;

  const cred = object(root.credentials ?? {}, 'credentials', fail);
  allowKeys(cred, 'credentials', ['sessionDurationSeconds', 'refreshThreshold'], fail);
  const sessionDurationSeconds = int(cred.sessionDurationSeconds ?? 3600, 'credentials.sessionDurationSeconds', 900, 43200, fail);
  const refreshThresholdMs = duration(cred.refreshThreshold ?? '15m', 'credentials.refreshThreshold', fail);
  if (refreshThresholdMs >= sessionDurationSeconds * 1000) {
    fail('credentials.refreshThreshold', 'must be shorter than credentials.sessionDurationSeconds, or every token is stale at birth');
  }

  const sec = object(root.secrets ?? {}, 'secrets', fail);
  allowKeys(sec, 'secrets', ['idleTimeout'], fail);
  const idleTimeoutMs = duration(sec.idleTimeout ?? '24h', 'secrets.idleTimeout', fail);

  return {
    defaultRegion,
    registries,
    namespaces: { exclude },
    imageCacheSecretNamespace,
    credentials: { sessionDurationSeconds, refreshThresholdMs },
    secrets: { idleTimeoutMs },
  };
}

type Fail = (field: string, detail: string) => never;

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
