// Public surface of the STS / Container Registry emulator.
export { startEmulator, type Emulator, type EmulatorOptions, type RegistryAuth } from './server.js';
export { registryServiceName, REGISTRY_TOKEN_ISSUER, REGISTRY_TOKEN_PATH, type Jwk } from './registry-auth.js';
export { demoState, DEMO_ACCOUNT_ID, DEMO_OWNER_ACCOUNT_ID, type DemoInfo, type DemoWorld } from './demo.js';
export type * from './model.js';
export { createState, type EmulatorState, type EmulatorSettings, type IssuedRegistryToken, type StateOptions } from './state.js';
export type { EmulatorClock } from './clock.js';
export type { CallFilter, CallLog, CallRecord } from './calls.js';
export type { FaultEffect, FaultHandle, FaultInjector, FaultTarget, Product } from './faults.js';
export {
  canonicalizedQuery,
  formatRpcTimestamp,
  parseRpcTimestamp,
  percentEncode,
  rpcSignature,
  rpcStringToSign,
  signRpcParams,
} from './signature.js';
export { contentMd5, roaSignature, roaStringToSign } from './roa-signature.js';
export { createOidcSigningKey, makeOidcToken, type OidcSigningKey } from './oidc.js';
export { oidcProviderArn, roleArn } from './arn.js';
export { TEMP_USERNAME } from './cr.js';
