// A kubeconfig for a test API server on loopback (self-signed TLS, a static token): written to `file`, which is
// returned, for KUBECONFIG.
import { writeFileSync } from 'node:fs';

export function writeKubeconfig(file: string, server: string): string {
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'tester', user: { token: 'test-token' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'tester' } }],
      'current-context': 'fake',
    }),
  );
  return file;
}
