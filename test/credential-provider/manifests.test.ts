// The shipped credential provider files agree with the code: the plugin's config parses, the kubelet
// configurations name the package's bin and pass the annotation keys the rules read. (The kubelet's own
// loader and validator check them in npm run e2e.)
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ANNOTATION } from '../../src/acr/annotations.js';
import { loadConfigFile } from '../../src/config/config.js';

const dir = 'manifests/credential-provider';
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));

describe('manifests/credential-provider', () => {
  it("config.json is a valid plugin configuration, read without the YAML parser's help", () => {
    const text = readFileSync(`${dir}/config.json`, 'utf8');
    expect(() => JSON.parse(text)).not.toThrow();
    const c = loadConfigFile(`${dir}/config.json`, { ownNamespace: 'x' });
    expect(c.credentialProvider).toEqual({ cacheDir: '/var/lib/acr-credential-provider', oidcProviderArn: expect.stringMatching(/^acs:ram::\d+:oidc-provider\//) });
    expect(c.registries).toHaveLength(1);
  });

  it.each(['node-identity.yaml', 'workload-identity.yaml'])('%s runs the package bin for the ACR domains', (file) => {
    const doc = parse(readFileSync(`${dir}/${file}`, 'utf8'));
    expect(doc).toMatchObject({ apiVersion: 'kubelet.config.k8s.io/v1', kind: 'CredentialProviderConfig' });
    const [provider] = doc.providers;
    expect(pkg.bin[provider.name]).toBe('dist/bin/acr-credential-provider.cjs');
    expect(provider.apiVersion).toBe('credentialprovider.kubelet.k8s.io/v1');
    expect(provider.matchImages).toEqual(['*.*.cr.aliyuncs.com', 'registry*.*.aliyuncs.com', 'crpi-*.*.personal.cr.aliyuncs.com']);
  });

  it('workload-identity.yaml passes every ACR annotation key the rules read, and the RRSA audience', () => {
    const { tokenAttributes } = parse(readFileSync(`${dir}/workload-identity.yaml`, 'utf8')).providers[0];
    expect(tokenAttributes.serviceAccountTokenAudience).toBe('sts.aliyuncs.com');
    expect([...tokenAttributes.optionalServiceAccountAnnotationKeys].sort()).toEqual(Object.values(ANNOTATION).sort());
    expect(parse(readFileSync(`${dir}/node-identity.yaml`, 'utf8')).providers[0].tokenAttributes).toBeUndefined();
  });
});
