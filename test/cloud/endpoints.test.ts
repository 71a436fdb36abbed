// Where the cloud APIs are: regional and VPC STS/CR defaults from the environment, and the URL check of overrides.
import { describe, expect, it } from 'vitest';
import { endpointsFromEnv } from '../../src/cloud/endpoints.js';

describe('endpointsFromEnv', () => {
  it('public defaults without any setting', () => {
    const e = endpointsFromEnv({});
    expect(e.sts).toBe('https://sts.aliyuncs.com');
    expect(e.ram).toBe('https://ram.aliyuncs.com');
    expect(e.cr('cn-hangzhou')).toBe('https://cr.cn-hangzhou.aliyuncs.com');
  });

  it('a regional STS endpoint from ALIBABA_CLOUD_STS_REGION, public or VPC', () => {
    expect(endpointsFromEnv({ ALIBABA_CLOUD_STS_REGION: 'cn-shanghai' }).sts).toBe('https://sts.cn-shanghai.aliyuncs.com');
    expect(endpointsFromEnv({ ALIBABA_CLOUD_STS_REGION: 'cn-shanghai', ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED: 'true' }).sts).toBe('https://sts-vpc.cn-shanghai.aliyuncs.com');
  });

  it('VPC endpoints when ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED is true in any case, and only then', () => {
    const vpc = endpointsFromEnv({ ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED: 'True', ALIBABA_CLOUD_STS_REGION: 'cn-beijing' });
    expect(vpc.sts).toBe('https://sts-vpc.cn-beijing.aliyuncs.com');
    expect(vpc.cr('cn-beijing')).toBe('https://cr-vpc.cn-beijing.aliyuncs.com');
    expect(endpointsFromEnv({ ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED: 'true' }).cr('us-west-1')).toBe('https://cr-vpc.us-west-1.aliyuncs.com');
    expect(endpointsFromEnv({ ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED: 'yes' }).cr('us-west-1')).toBe('https://cr.us-west-1.aliyuncs.com');
  });

  it('refuses an override that is not a whole URL: text before the scheme, or after the URL', () => {
    expect(() => endpointsFromEnv({ ALIBABA_CLOUD_STS_ENDPOINT: 'see https://sts.example.test' })).toThrow(
      'ALIBABA_CLOUD_STS_ENDPOINT must be a full URL with scheme (https://...), got "see https://sts.example.test"',
    );
    expect(() => endpointsFromEnv({ ALIBABA_CLOUD_CR_ENDPOINT: 'https://cr.example.test trailing' })).toThrow(
      'ALIBABA_CLOUD_CR_ENDPOINT must be a full URL with scheme (https://...), got "https://cr.example.test trailing"',
    );
    expect(endpointsFromEnv({ ALIBABA_CLOUD_STS_ENDPOINT: 'http://127.0.0.1:8080/sts/' }).sts).toBe('http://127.0.0.1:8080/sts');
  });
});
