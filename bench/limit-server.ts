// The ceiling: a trivial fastify route that parses the review like the webhook and answers a fixed
// AdmissionReview, on the same kind of listener (HTTP/2 with HTTP/1.1 fallback over TLS). Same runtime, same TLS
// settings, same machine: what the webhook is compared with, in both protocols.
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { BODY_LIMIT } from '../src/server.js';

const app = Fastify({
  http2: true,
  https: { key: readFileSync(process.env.TLS_KEY_FILE!), cert: readFileSync(process.env.TLS_CERT_FILE!), minVersion: 'TLSv1.2', allowHTTP1: true },
  bodyLimit: BODY_LIMIT,
  logger: false,
});
app.get('/healthz', async () => ({ status: 'ok' }));
app.post('/mutate', async (request) => {
  const uid = (request.body as { request?: { uid?: string } }).request?.uid ?? '';
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } };
});
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
const a = app.server.address();
console.log(JSON.stringify({ msg: 'limit server serving', port: typeof a === 'object' && a ? a.port : 0 }));
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
