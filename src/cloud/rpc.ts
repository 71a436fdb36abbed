// Signed calls through @alicloud/pop-core with a deadline, bounded retries and per-call metrics.
import type http from 'node:http';
import { createRequire } from 'node:module';
import type PopCoreType from '@alicloud/pop-core';
import type { Budget } from '../pull-secrets/types.js';
import { CloudError, toCloudError } from './errors.js';

export interface Credentials {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string;
}

export interface CallObserver {
  (api: string, code: string, seconds: number): void;
}

export interface CallerOptions {
  /** Upper bound for one attempt, whatever the budget (ms). */
  attemptTimeoutMs?: number;
  maxAttempts?: number;
  /** First backoff step (ms); doubles per attempt, with ±50% jitter. */
  backoffMs?: number;
  observe?: CallObserver;
  /**
   * Load pop-core at the first call instead of in the constructor. The credential provider runs once per image
   * pull and usually answers from its disk cache: loading the client there would dominate its start-up.
   */
  lazyLoad?: boolean;
  /** Called once, just before pop-core is loaded (the credential provider turns V8's compile cache on there). */
  beforeLoad?: () => void;
}

const require = createRequire(import.meta.url);
let popCore: typeof PopCoreType | undefined;
/** pop-core is CommonJS: a synchronous require, once per process. */
function loadPopCore(): typeof PopCoreType {
  popCore ??= require('@alicloud/pop-core') as typeof PopCoreType;
  return popCore;
}

/** Credentials of an unsigned call: pop-core signs only when it gets an AccessKey pair. */
const ANONYMOUS = { getCredentials: async () => ({}) };

/** Below this much remaining budget another attempt cannot finish: answer with what we have. */
const MIN_ATTEMPT_MS = 200;

export class CloudCaller {
  private readonly agents = new Map<string, http.Agent>();
  private readonly attemptTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;

  constructor(private readonly opts: CallerOptions = {}) {
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? 5000;
    this.maxAttempts = opts.maxAttempts ?? 4;
    this.backoffMs = opts.backoffMs ?? 100;
    if (!opts.lazyLoad) this.popCore();
  }

  private popCore(): typeof PopCoreType {
    if (!popCore) this.opts.beforeLoad?.();
    return loadPopCore();
  }

  /**
   * RPC-style API (STS, CR Enterprise). Always POST: a GET puts SecurityToken and Signature in the URL that
   * pop-core's errors embed (and, for AssumeRoleWithOIDC, the OIDC token). `creds` null: an unsigned call,
   * for the APIs that take none (AssumeRoleWithOIDC).
   */
  rpc<T>(endpoint: string, apiVersion: string, creds: Credentials | null, action: string, params: Record<string, string | number>, budget: Budget): Promise<T> {
    const PopCore = this.popCore();
    const client = new PopCore({ endpoint, apiVersion, ...(creds ? credentialFields(creds) : { credentialsProvider: ANONYMOUS }) });
    return this.withRetries(action, budget, async (timeout) => {
      const json = await client.request<Record<string, unknown>>(action, params, { method: 'POST', timeout, agent: this.agent(endpoint) });
      // CR reports some failures as HTTP 200 with IsSuccess:false; pop-core only looks at Code.
      if (json.IsSuccess === false) {
        throw new CloudError(action, typeof json.Code === 'string' ? json.Code : 'Unknown', false, typeof json.RequestId === 'string' ? json.RequestId : undefined);
      }
      return json as T;
    });
  }

  /** ROA-style API (CR Personal Edition), signed by pop-core's ROAClient. */
  roa<T>(endpoint: string, apiVersion: string, creds: Credentials, api: string, method: string, path: string, budget: Budget): Promise<T> {
    const client = new (this.popCore().ROAClient)({ endpoint, apiVersion, ...credentialFields(creds) });
    return this.withRetries(api, budget, (timeout) => client.request<T>(method, path, {}, '', {}, { timeout, agent: this.agent(endpoint) }));
  }

  private agent(endpoint: string): http.Agent {
    const origin = new URL(endpoint).origin;
    let agent = this.agents.get(origin);
    if (!agent) {
      // Keep-alive: a cold admission should not pay a TLS handshake per call.
      // Loaded here, at the first call: the credential provider usually answers without one.
      const mod = (origin.startsWith('https:') ? require('node:https') : require('node:http')) as typeof http;
      agent = new mod.Agent({ keepAlive: true, maxSockets: 64 });
      this.agents.set(origin, agent);
    }
    return agent;
  }

  private async withRetries<T>(api: string, budget: Budget, attempt: (timeoutMs: number) => Promise<T>): Promise<T> {
    let last: CloudError | undefined;
    for (let n = 0; n < this.maxAttempts; n++) {
      const remaining = budget.deadline - Date.now();
      if (remaining < MIN_ATTEMPT_MS || budget.signal?.aborted) break;
      const started = performance.now();
      try {
        const result = await attempt(Math.min(this.attemptTimeoutMs, remaining));
        this.opts.observe?.(api, 'ok', (performance.now() - started) / 1000);
        return result;
      } catch (e) {
        last = toCloudError(api, e);
        this.opts.observe?.(api, last.code, (performance.now() - started) / 1000);
        if (!last.retryable) throw last;
      }
      const pause = this.backoffMs * 2 ** n * (0.5 + Math.random());
      if (budget.deadline - Date.now() - pause < MIN_ATTEMPT_MS) break;
      await new Promise((r) => setTimeout(r, pause));
    }
    throw last ?? new CloudError(api, 'Timeout', true);
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

function credentialFields(creds: Credentials) {
  return {
    accessKeyId: creds.accessKeyId,
    accessKeySecret: creds.accessKeySecret,
    ...(creds.securityToken ? { securityToken: creds.securityToken } : {}),
  };
}
