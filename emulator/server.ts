// One HTTP server for STS (RPC, `/sts`), RAM (RPC, `/ram`), CR Enterprise (RPC, `/cr/<region>`) and CR Personal Edition
// (ROA, `/cr/<region>/tokens`). pop-core's RPCClient keeps the endpoint's path and requests
// `<endpoint>/` (POST) or `<endpoint>/?<query>` (GET), so `/sts/` and `/cr/<region>/` are what arrive;
// RPC signing ignores the path. ROAClient requests `<endpoint><uriPattern>` but signs only uriPattern,
// so the `/cr/<region>` prefix is stripped before the ROA signature is checked. `/auth` is the registry token
// service (registry-auth.ts); with `tls` the same routes are also served over HTTPS on a second port.
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CallLog, type CallRecord } from './calls.js';
import type { Caller } from './caller.js';
import type { EmulatorClock } from './clock.js';
import { CR_ACTIONS, CR_VERSION, handleCr } from './cr.js';
import { CR_PERSONAL_VERSION, handleCrPersonal, personalActionFor } from './cr-personal.js';
import { demoState } from './demo.js';
import { ApiError, errorBody, errors } from './errors.js';
import { FaultInjector, type FaultEffect, type FaultHandle, type FaultTarget, type Product } from './faults.js';
import { authenticateRoa, authenticateRpc } from './gateway.js';
import { BodyTooLarge, flatHeaders, isFormBody, parseForm, readBody, send, sendJson } from './http-io.js';
import { newRequestId } from './ids.js';
import type { WorldSpec } from './model.js';
import { handleRegistryToken, REGISTRY_TOKEN_ISSUER, REGISTRY_TOKEN_PATH, RegistryTokenSigner, registryServiceName, type Jwk } from './registry-auth.js';
import { createState, type EmulatorState, type StateOptions } from './state.js';
import { handleRam, RAM_ACTIONS, RAM_VERSION } from './ram.js';
import { handleSts, STS_ACTIONS, STS_ANONYMOUS_ACTIONS, STS_VERSION } from './sts.js';

export interface EmulatorOptions extends StateOptions {
  /** The world to serve; default demoState(). Kept by reference: mutations apply to later calls. */
  world?: WorldSpec;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Request bodies above this are refused (413). Default 1 MiB. */
  maxBodyBytes?: number;
  /** Size of the retained call log. Default 10 000. */
  maxCallRecords?: number;
  /**
   * Also serve HTTPS with this certificate (PEM) on another port, for clients that insist on it: a registry's
   * token realm must be https for go-containerregistry and the container runtimes.
   */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/** What a registry (distribution's `auth.token`) needs to trust the emulator's token service. */
export interface RegistryAuth {
  /** Path of the token endpoint on either listener: the realm is `<scheme>://<host>:<port>/auth`. */
  path: string;
  /** `auth.token.issuer`. */
  issuer: string;
  /** `auth.token.service` of an instance's registry (also the JWT audience). */
  service(instanceId: string): string;
  /** `auth.token.jwks` file content: the key the JWTs are signed with. */
  jwks(): { keys: Jwk[] };
}

export interface Emulator {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** `<url>/sts`: ALIBABA_CLOUD_STS_ENDPOINT. */
  stsEndpoint: string;
  /** `<url>/ram`: ALIBABA_CLOUD_RAM_ENDPOINT. */
  ramEndpoint: string;
  /** `<url>/cr/{region}`: ALIBABA_CLOUD_CR_ENDPOINT. */
  crEndpointTemplate: string;
  /** The CR endpoint for one region. */
  crEndpoint(region: string): string;
  /** `https://127.0.0.1:<port>` when started with `tls`. */
  tlsUrl?: string;
  tlsPort?: number;
  /** The registry token service (registry-auth.ts). */
  registryAuth: RegistryAuth;
  state: EmulatorState;
  clock: EmulatorClock;
  calls: CallLog;
  faults: FaultInjector;
  inject(effect: FaultEffect, target?: FaultTarget): FaultHandle;
  injectLatency(ms: number, target?: FaultTarget): FaultHandle;
  injectThrottle(target?: FaultTarget): FaultHandle;
  /** 500 InternalError (default) or 503 ServiceUnavailable. */
  injectServerError(status?: 500 | 503, target?: FaultTarget): FaultHandle;
  injectHang(target?: FaultTarget): FaultHandle;
  /** Clears calls, faults, nonces, issued registry tokens and clock offsets. The world and STS sessions stay. */
  reset(): void;
  /** Stops listening and drops every connection, hung ones included. Idempotent. */
  close(): Promise<void>;
}

type Route =
  | { style: 'rpc'; product: 'sts'; hostId: string }
  | { style: 'rpc'; product: 'ram'; hostId: string }
  | { style: 'rpc'; product: 'cr'; region: string; hostId: string }
  | { style: 'roa'; product: 'cr-personal'; region: string; resource: string; hostId: string };

const REGION = /^[a-z]{2,}(?:-[a-z0-9]+)+$/;

function routeFor(path: string): Route | undefined {
  if (path === '/sts' || path === '/sts/') return { style: 'rpc', product: 'sts', hostId: 'sts.aliyuncs.com' };
  if (path === '/ram' || path === '/ram/') return { style: 'rpc', product: 'ram', hostId: 'ram.aliyuncs.com' };
  const m = /^\/cr\/([^/]+)(\/.*)?$/.exec(path);
  if (!m || !REGION.test(m[1]!)) return undefined;
  const region = m[1]!;
  const hostId = `cr.${region}.aliyuncs.com`;
  const rest = m[2];
  if (rest === undefined || rest === '/') return { style: 'rpc', product: 'cr', region, hostId };
  return { style: 'roa', product: 'cr-personal', region, resource: rest, hostId };
}

const RECOMMEND_PRODUCT: Record<Product, string> = { sts: 'Sts', cr: 'cr', 'cr-personal': 'cr', ram: 'Ram' };
const RPC_PRODUCTS = {
  sts: { actions: STS_ACTIONS, version: STS_VERSION },
  ram: { actions: RAM_ACTIONS, version: RAM_VERSION },
  cr: { actions: CR_ACTIONS, version: CR_VERSION },
} as const;

function callerArn(caller: Caller): string | undefined {
  return caller.kind === 'anonymous' ? undefined : caller.arn;
}

function faultError(effect: Exclude<FaultEffect, { kind: 'latency' | 'hang' | 'raw' }>): ApiError {
  const base = effect.kind === 'throttle' ? errors.throttled() : effect.status === 503 ? errors.serviceUnavailable() : errors.internalError();
  return new ApiError(effect.status ?? base.status, effect.code ?? base.code, effect.message ?? base.message);
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const state = createState(options.world ?? demoState(), options);
  const calls = new CallLog(options.maxCallRecords);
  const faults = new FaultInjector();
  const signer = new RegistryTokenSigner();
  const maxBody = options.maxBodyBytes ?? 1024 * 1024;
  const pendingDelays = new Set<{ timer: NodeJS.Timeout; resolve: (ok: boolean) => void }>();
  let closed = false;

  /** Resolves false if the emulator closed meanwhile. */
  const delay = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          pendingDelays.delete(entry);
          resolve(!closed);
        }, ms),
        resolve,
      };
      pendingDelays.add(entry);
    });

  const fail = (res: ServerResponse, record: CallRecord | undefined, err: unknown, requestId: string, hostId: string, product: Product): void => {
    const apiError = err instanceof ApiError ? err : errors.internalError();
    if (record) {
      record.status = apiError.status;
      record.code = apiError.code;
    }
    sendJson(res, apiError.status, errorBody(apiError, requestId, hostId, RECOMMEND_PRODUCT[product]), requestId);
  };

  /** Applies injected faults; true when a fault answered (or swallowed) the call. */
  const applyFaults = async (res: ServerResponse, record: CallRecord, route: Route, requestId: string): Promise<boolean> => {
    const decision = faults.take({ product: route.product, action: record.action, ...(record.accessKeyId ? { accessKeyId: record.accessKeyId } : {}) });
    if (decision.latencyMs > 0 && !(await delay(decision.latencyMs))) return true;
    const effect = decision.effect;
    if (!effect) return false;
    record.fault = effect.kind;
    switch (effect.kind) {
      case 'hang':
        return true; // the socket stays open until the client or close() ends it
      case 'raw':
        record.status = effect.status;
        send(res, effect.status, effect.body, effect.contentType ?? 'text/html', requestId);
        return true;
      default:
        fail(res, record, faultError(effect), requestId, route.hostId, route.product);
        return true;
    }
  };

  const handleRpc = async (req: IncomingMessage, res: ServerResponse, route: Extract<Route, { style: 'rpc' }>, method: string, rawQuery: string, body: Buffer, requestId: string): Promise<void> => {
    // POST parameters may be split between query and form body; the body wins on a clash.
    const params = { ...parseForm(rawQuery), ...(method === 'POST' && isFormBody(req) ? parseForm(body.toString('utf8')) : {}) };
    const action = params.Action ?? '';
    const record = calls.start({
      at: state.clock.gatewayNow(),
      product: route.product,
      action,
      method,
      ...(params.AccessKeyId ? { accessKeyId: params.AccessKeyId } : {}),
    });
    if (await applyFaults(res, record, route, requestId)) return;
    try {
      const sts = route.product === 'sts';
      const product = RPC_PRODUCTS[route.product];
      if (!params.Action) throw errors.missingParameter('Action');
      if (!product.actions.has(action)) throw errors.apiNotFound();
      if (!params.Version) throw errors.missingParameter('Version');
      if (params.Version !== product.version) throw errors.invalidVersion();
      const caller = authenticateRpc(state, method, params, sts && STS_ANONYMOUS_ACTIONS.has(action));
      const principal = callerArn(caller);
      if (principal) record.principal = principal;
      const result =
        route.product === 'sts'
          ? handleSts(state, action, params, caller)
          : route.product === 'ram'
            ? handleRam(state.world, action, params, caller)
            : handleCr(state, route.region, action, params, caller);
      record.status = 200;
      sendJson(res, 200, { RequestId: requestId, ...result }, requestId);
    } catch (err) {
      fail(res, record, err, requestId, route.hostId, route.product);
    }
  };

  const handleRoa = async (req: IncomingMessage, res: ServerResponse, route: Extract<Route, { style: 'roa' }>, method: string, rawQuery: string, body: Buffer, requestId: string): Promise<void> => {
    const headers = flatHeaders(req);
    const presentedKey = /^acs ([^:\s]+):/.exec(headers.authorization ?? '')?.[1];
    const record = calls.start({
      at: state.clock.gatewayNow(),
      product: route.product,
      action: personalActionFor(method, route.resource),
      method,
      ...(presentedKey ? { accessKeyId: presentedKey } : {}),
    });
    if (await applyFaults(res, record, route, requestId)) return;
    try {
      if (method !== 'GET' || route.resource !== '/tokens') throw errors.apiNotFound();
      const caller = authenticateRoa(state, {
        method,
        resource: route.resource,
        headers,
        query: parseForm(rawQuery),
        body,
        version: CR_PERSONAL_VERSION,
      });
      const principal = callerArn(caller);
      if (principal) record.principal = principal;
      const result = handleCrPersonal(state, route.region, method, route.resource, caller, requestId);
      record.status = 200;
      sendJson(res, 200, result, requestId);
    } catch (err) {
      fail(res, record, err, requestId, route.hostId, route.product);
    }
  };

  const onRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = newRequestId();
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const rawQuery = q < 0 ? '' : rawUrl.slice(q + 1);
    const method = (req.method ?? 'GET').toUpperCase();
    let body: Buffer;
    try {
      body = await readBody(req, maxBody);
    } catch (err) {
      const tooLarge = err instanceof BodyTooLarge;
      sendJson(res, tooLarge ? 413 : 400, { RequestId: requestId, Code: tooLarge ? 'RequestEntityTooLarge' : 'InvalidRequest', Message: 'request body rejected' }, requestId);
      return;
    }
    if (path === REGISTRY_TOKEN_PATH) {
      const record = calls.start({ at: state.clock.gatewayNow(), product: 'registry-auth', action: 'Token', method });
      const answer = handleRegistryToken(state, signer, method, rawQuery, req.headers.authorization);
      record.status = answer.status;
      if (answer.code) record.code = answer.code;
      if (answer.principal) record.principal = answer.principal;
      sendJson(res, answer.status, answer.body, requestId);
      return;
    }
    const route = routeFor(path);
    if (!route) {
      const record = calls.start({ at: state.clock.gatewayNow(), product: 'unknown', action: `${method} ${path}`, method });
      record.status = 404;
      record.code = 'InvalidAction.NotFound';
      sendJson(res, 404, errorBody(errors.apiNotFound(), requestId, 'emulator', 'unknown'), requestId);
      return;
    }
    if (route.style === 'rpc') await handleRpc(req, res, route, method, rawQuery, body, requestId);
    else await handleRoa(req, res, route, method, rawQuery, body, requestId);
  };

  const listener: RequestListener = (req, res) => {
    onRequest(req, res).catch(() => {
      if (!res.headersSent && !res.destroyed) sendJson(res, 500, errorBody(errors.internalError(), newRequestId(), 'emulator', 'unknown'), 'emulator');
    });
  };
  const servers: Server[] = [createServer(listener)];
  if (options.tls) servers.push(createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, listener));

  const host = options.host ?? '127.0.0.1';
  const listen = (s: Server, p: number) =>
    new Promise<number>((resolve, reject) => {
      s.once('error', reject);
      s.listen(p, host, () => {
        s.off('error', reject);
        resolve((s.address() as AddressInfo).port);
      });
    });
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const port = await listen(servers[0]!, options.port ?? 0);
  const url = `http://${hostPart}:${port}`;
  const tlsPort = servers[1] ? await listen(servers[1], 0).catch(async (e: unknown) => {
    servers[0]!.close();
    throw e;
  }) : undefined;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      closed = true;
      for (const entry of pendingDelays) {
        clearTimeout(entry.timer);
        entry.resolve(false);
      }
      pendingDelays.clear();
      let open = servers.length;
      for (const s of servers) {
        s.close(() => --open === 0 && resolve());
        s.closeAllConnections();
      }
    });
    return closing;
  };

  return {
    url,
    port,
    stsEndpoint: `${url}/sts`,
    ramEndpoint: `${url}/ram`,
    crEndpointTemplate: `${url}/cr/{region}`,
    crEndpoint: (region) => `${url}/cr/${region}`,
    ...(tlsPort !== undefined ? { tlsPort, tlsUrl: `https://${hostPart}:${tlsPort}` } : {}),
    registryAuth: {
      path: REGISTRY_TOKEN_PATH,
      issuer: REGISTRY_TOKEN_ISSUER,
      service: (instanceId) => {
        const inst = (state.world.instances ?? []).find((i) => i.id === instanceId);
        if (!inst) throw new Error(`emulator: no instance ${instanceId}`);
        return registryServiceName(inst);
      },
      jwks: () => signer.jwks(),
    },
    state,
    clock: state.clock,
    calls,
    faults,
    inject: (effect, target) => faults.add(effect, target),
    injectLatency: (ms, target) => faults.add({ kind: 'latency', ms }, target),
    injectThrottle: (target) => faults.add({ kind: 'throttle' }, target),
    injectServerError: (status = 500, target) => faults.add({ kind: 'error', status }, target),
    injectHang: (target) => faults.add({ kind: 'hang' }, target),
    reset() {
      calls.reset();
      faults.clear();
      state.reset();
    },
    close,
  };
}
