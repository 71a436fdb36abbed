// Where the cloud APIs are: public defaults, VPC endpoints on request, and full overrides for private clouds
// (Apsara Stack) and tests.

export interface Endpoints {
  sts: string;
  /** Container Registry endpoint of one region. */
  cr(region: string): string;
}

const URL_RE = /^https?:\/\/[^\s/]+(\/\S*)?$/;

export function endpointsFromEnv(env: NodeJS.ProcessEnv): Endpoints {
  const vpc = (env.ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED ?? '').toLowerCase() === 'true';
  const stsRegion = env.ALIBABA_CLOUD_STS_REGION;
  const sts =
    env.ALIBABA_CLOUD_STS_ENDPOINT ||
    (stsRegion ? `https://sts${vpc ? '-vpc' : ''}.${stsRegion}.aliyuncs.com` : 'https://sts.aliyuncs.com');
  const crTemplate = env.ALIBABA_CLOUD_CR_ENDPOINT || `https://cr${vpc ? '-vpc' : ''}.{region}.aliyuncs.com`;
  for (const [name, value] of [['ALIBABA_CLOUD_STS_ENDPOINT', sts], ['ALIBABA_CLOUD_CR_ENDPOINT', crTemplate]] as const) {
    if (!URL_RE.test(value)) throw new Error(`${name} must be a full URL with scheme (https://...), got ${JSON.stringify(value)}`);
  }
  return { sts: sts.replace(/\/$/, ''), cr: (region) => crTemplate.replaceAll('{region}', region).replace(/\/$/, '') };
}
