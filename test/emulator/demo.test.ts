import PopCore from '@alicloud/pop-core';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCliArgs, runCli } from '../../emulator/cli.js';
import { demoState } from '../../emulator/demo.js';
import { makeOidcToken } from '../../emulator/oidc.js';
import { startEmulator } from '../../emulator/server.js';
import { assumeRole, crClient, fromSts, personalClient, post } from './fixture.js';

const world = demoState();
const d = world.demo;
const emu = await startEmulator({ world });
afterAll(() => emu.close());

describe('demoState', () => {
  it('exposes the endpoints the webhook is configured with', () => {
    expect(emu.stsEndpoint).toBe(`${emu.url}/sts`);
    expect(emu.crEndpointTemplate).toBe(`${emu.url}/cr/{region}`);
    expect(emu.crEndpointTemplate.replace('{region}', 'cn-beijing')).toBe(emu.crEndpoint('cn-beijing'));
    expect(demoState().demo.accessKeyId).not.toBe(d.accessKeyId);
  });

  it('chains user AK -> acr-pull -> acr-pull-user and opens both instances', async () => {
    const user = { accessKeyId: d.accessKeyId, accessKeySecret: d.accessKeySecret };
    const service = fromSts(await assumeRole(emu, user, d.serviceRoleArn));
    const own = await post<Record<string, any>>(crClient(emu, 'cn-hangzhou', service), 'GetAuthorizationToken', { InstanceId: d.hangzhouInstanceId });
    expect(own.IsSuccess).toBe(true);
    const endpoints = await post<Record<string, any>>(crClient(emu, 'cn-hangzhou', service), 'ListInstanceEndpoint', { InstanceId: d.hangzhouInstanceId, ModuleName: 'Registry' });
    expect(endpoints.Endpoints[0].Domains.map((x: { Domain: string }) => x.Domain)).toEqual(['demo-registry.cn-hangzhou.cr.aliyuncs.com', 'registry.example.com']);
    const owner = fromSts(await assumeRole(emu, service, d.userRoleArn));
    const theirs = await post<Record<string, any>>(crClient(emu, 'cn-beijing', owner), 'GetAuthorizationToken', { InstanceId: d.beijingInstanceId });
    expect(theirs.IsSuccess).toBe(true);
    const personal = await personalClient(emu, d.personalRegion, service).get<{ data: { authorizationToken: string } }>('/tokens');
    expect(personal.data.authorizationToken).toBeTruthy();
    // The user itself may only assume the service role.
    await expect(assumeRole(emu, user, d.userRoleArn)).rejects.toMatchObject({ code: 'NoPermission' });
  });

  it('supports RRSA into the service role', async () => {
    const anonymous = new PopCore({ endpoint: emu.stsEndpoint, apiVersion: '2015-04-01', credentialsProvider: { getCredentials: async () => ({}) } });
    const res = await post<Record<string, any>>(anonymous, 'AssumeRoleWithOIDC', {
      OIDCProviderArn: d.oidcProviderArn,
      RoleArn: d.serviceRoleArn,
      RoleSessionName: 'rrsa',
      OIDCToken: makeOidcToken({ iss: d.oidcIssuer, aud: d.oidcAudience, sub: d.oidcSubject, exp: Math.floor(Date.now() / 1000) + 600 }, d.oidcSigningKey),
    });
    expect(res.Credentials.AccessKeyId).toMatch(/^STS\./);
  });
});

describe('cli', () => {
  it('parses port and host from argv and env', () => {
    expect(parseCliArgs([], { ACR_EMULATOR_PORT: '8085' })).toMatchObject({ port: 8085, host: '127.0.0.1' });
    expect(parseCliArgs(['--port', '9000', '--host=0.0.0.0'], { ACR_EMULATOR_PORT: '8085' })).toMatchObject({ port: 9000, host: '0.0.0.0' });
    expect(parseCliArgs(['7000'], {})).toMatchObject({ port: 7000 });
    expect(() => parseCliArgs(['--port', 'x'], {})).toThrow(/invalid port/);
    expect(() => parseCliArgs(['--bogus'], {})).toThrow(/unknown argument/);
  });

  it('prints endpoints but never the secret, which goes to a 0600 file on request', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'acr-emu-'));
    const file = join(dir, 'creds.env');
    const lines: string[] = [];
    const cli = await runCli(['--port', '0', '--credentials-file', file], {}, (l) => lines.push(l));
    try {
      const printed = lines.join('\n');
      expect(printed).toContain(`ALIBABA_CLOUD_STS_ENDPOINT=${cli.stsEndpoint}`);
      expect(printed).toContain(`ALIBABA_CLOUD_CR_ENDPOINT=${cli.url}/cr/{region}`);
      expect(printed).toContain(`ALIBABA_CLOUD_RAM_ENDPOINT=${cli.url}/ram`);
      const content = readFileSync(file, 'utf8');
      const secret = /ALIBABA_CLOUD_ACCESS_KEY_SECRET=(\S+)/.exec(content)?.[1];
      expect(secret).toBeTruthy();
      expect(printed).not.toContain(secret);
      expect(statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      await cli.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
