// Everything the request handlers share: the world, the clock, issued secrets and replay memory.
import type { Caller } from './caller.js';
import { createClock, type EmulatorClock } from './clock.js';
import { validateWorld } from './directory.js';
import type { WorldSpec } from './model.js';
import { NonceCache } from './nonce-cache.js';
import { SecurityTokenCodec } from './security-token.js';

export interface EmulatorSettings {
  /** Lifetime of a registry (ACR) token before the STS-session cap, seconds. Default 3600. */
  tokenTtlSeconds: number;
  /** When true, tokens asked for with STS credentials are not capped at the session's expiry (default false). */
  tokenOutlivesSession: boolean;
  /** Allowed |request time - gateway time|, ms. Default 15 min. */
  timestampToleranceMs: number;
  /** HTTP status of CR INSTANCE_NOT_EXIST answers (the real service often says 200). Default 200. */
  instanceNotExistStatus: number;
}

/** A registry login the emulator handed out (for tests and registry fakes to check a pull secret). */
export interface IssuedRegistryToken {
  edition: 'enterprise' | 'personal';
  username: string;
  password: string;
  /** Enterprise only. */
  instanceId?: string;
  region: string;
  accountId: string;
  /** ARN of the identity that asked. */
  principal: string;
  /** That identity: the registry's token service asks RAM what it may do with the token now. */
  holder: Exclude<Caller, { kind: 'anonymous' }>;
  expiresAt: number;
}

export interface EmulatorState {
  world: WorldSpec;
  clock: EmulatorClock;
  settings: EmulatorSettings;
  securityTokens: SecurityTokenCodec;
  nonces: NonceCache;
  /** Keyed by password (the AuthorizationToken). Expired entries are pruned as new ones are issued. */
  registryTokens: Map<string, IssuedRegistryToken>;
  /** Forget nonces and issued registry tokens and reset the clock; the world and STS key stay. */
  reset(): void;
}

export interface StateOptions {
  now?: () => number;
  tokenTtlSeconds?: number;
  /**
   * Hand out registry tokens that outlive the STS session that asked (default false: capped at the session's
   * Expiration). For testing that the webhook caps them itself instead of trusting the service to.
   */
  tokenOutlivesSession?: boolean;
  timestampToleranceMs?: number;
  instanceNotExistStatus?: number;
  /** Replay window for SignatureNonce, ms. Default 15 min. */
  nonceWindowMs?: number;
  /** Bound on remembered nonces. Default 100 000. */
  maxNonces?: number;
}

const FIFTEEN_MINUTES = 15 * 60 * 1000;

export function createState(world: WorldSpec, options: StateOptions = {}): EmulatorState {
  validateWorld(world);
  const clock = createClock(options.now);
  const nonces = new NonceCache(options.nonceWindowMs ?? FIFTEEN_MINUTES, options.maxNonces ?? 100_000);
  const registryTokens = new Map<string, IssuedRegistryToken>();
  return {
    world,
    clock,
    settings: {
      tokenTtlSeconds: options.tokenTtlSeconds ?? 3600,
      tokenOutlivesSession: options.tokenOutlivesSession ?? false,
      timestampToleranceMs: options.timestampToleranceMs ?? FIFTEEN_MINUTES,
      instanceNotExistStatus: options.instanceNotExistStatus ?? 200,
    },
    securityTokens: new SecurityTokenCodec(),
    nonces,
    registryTokens,
    reset() {
      nonces.clear();
      registryTokens.clear();
      clock.reset();
    },
  };
}

export function recordRegistryToken(state: EmulatorState, token: IssuedRegistryToken): void {
  const now = state.clock.now();
  for (const [password, t] of state.registryTokens) if (t.expiresAt <= now) state.registryTokens.delete(password);
  state.registryTokens.set(token.password, token);
}
