// Where the cloud APIs are: public defaults, VPC endpoints on request, and full overrides for private clouds
// (Apsara Stack) and tests, from the environment or the configuration file's `endpoints` (the environment wins).
import type { EndpointsConfig } from '../config/config.js';

export interface Endpoints {
  sts: string;
  /** RAM, only read to explain a refused AssumeRole (GetRole); https://ram.aliyuncs.com when absent. */
  ram?: string;
  /** Container Registry endpoint of one region. */
  cr(region: string): string;
}

export const DEFAULT_RAM_ENDPOINT = 'https://ram.aliyuncs.com';

// A function declaration, not a module constant, so the tests that call endpointsFromEnv also cover the pattern.
function fullUrl(): RegExp {
  return /^https?:\/\/[^\s/]+(\/\S*)?$/;
}
const trim = (url: string) => url.replace(/\/$/, '');

export function endpointsFromEnv(env: NodeJS.ProcessEnv, file: EndpointsConfig = {}): Endpoints {
  const vpc = (env.ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED ?? '').toLowerCase() === 'true';
  const stsRegion = env.ALIBABA_CLOUD_STS_REGION;
  const sts =
    env.ALIBABA_CLOUD_STS_ENDPOINT ||
    file.sts ||
    (stsRegion ? `https://sts${vpc ? '-vpc' : ''}.${stsRegion}.aliyuncs.com` : 'https://sts.aliyuncs.com');
  const ram = env.ALIBABA_CLOUD_RAM_ENDPOINT || file.ram || DEFAULT_RAM_ENDPOINT;
  const fileCr = file.cr;
  const crTemplate = env.ALIBABA_CLOUD_CR_ENDPOINT || (typeof fileCr === 'string' ? fileCr : `https://cr${vpc ? '-vpc' : ''}.{region}.aliyuncs.com`);
  // Per-region URLs (Apsara Stack endpoints rarely follow a pattern) apply unless the environment overrides all.
  const perRegion = !env.ALIBABA_CLOUD_CR_ENDPOINT && typeof fileCr === 'object' ? fileCr : {};
  for (const [name, value] of [['ALIBABA_CLOUD_STS_ENDPOINT', sts], ['ALIBABA_CLOUD_RAM_ENDPOINT', ram], ['ALIBABA_CLOUD_CR_ENDPOINT', crTemplate]] as const) {
    if (!fullUrl().test(value)) throw new Error(`${name} must be a full URL with scheme (https://...), got ${JSON.stringify(value)}`);
  }
  return {
    sts: trim(sts),
    ram: trim(ram),
    cr: (region) => trim(Object.hasOwn(perRegion, region) ? perRegion[region]! : crTemplate.replaceAll('{region}', region)),
  };
}
