// Types for @alicloud/pop-core 1.8.x. The package's own lib/rpc.d.ts covers only a partial RPCClient
// (no ROAClient, no credentialsProvider, untyped options), so this ambient declaration replaces it.
// It must stay a script (no top-level import/export) to take precedence over the package's types.

declare module '@alicloud/pop-core' {
  namespace PopCore {
    interface Credentials {
      accessKeyId?: string;
      accessKeySecret?: string;
      securityToken?: string;
    }

    /** Anything with getCredentials(); returning no accessKeyId/secret sends the request unsigned. */
    interface CredentialsProvider {
      getCredentials(): Promise<Credentials>;
    }

    interface BaseConfig {
      /** Scheme required; a path is kept (RPC requests go to `<endpoint>/`, ROA to `<endpoint><uriPattern>`). */
      endpoint: string;
      apiVersion: string;
      accessKeyId?: string;
      /** RPC only: alias of accessKeySecret. */
      secretAccessKey?: string;
      accessKeySecret?: string;
      securityToken?: string;
      credentialsProvider?: CredentialsProvider;
      /** Extra request options merged into every request (httpx options). */
      opts?: RequestOptions;
    }

    interface Config extends BaseConfig {
      /** Extra JSON `Code` values treated as success (default 200, '200', 'OK', 'Success', 'success'). */
      codes?: Array<string | number>;
    }

    interface RequestOptions {
      /** Only the exact string 'POST' sends a form body; anything else puts every parameter in the URL. */
      method?: string;
      /** Connect and read timeout in ms (httpx default 3000). */
      timeout?: number;
      readTimeout?: number;
      connectTimeout?: number;
      headers?: Record<string, string>;
      /** Default true: upper-cases the first letter of the action. */
      formatAction?: boolean;
      /** Default true: upper-cases the first letter of every parameter key. */
      formatParams?: boolean;
      agent?: unknown;
      [key: string]: unknown;
    }

    interface ROARequestOptions extends RequestOptions {
      /** Return the body text instead of parsing it. */
      rawBody?: boolean;
    }

    /** Thrown by RPCClient.request when the JSON `Code` is not success-like (HTTP status is ignored). */
    interface RPCError extends Error {
      code: string;
      data: Record<string, unknown>;
      url: string;
    }

    /** Thrown by ROAClient for JSON responses with HTTP status >= 400. */
    interface ROAError extends Error {
      code: string;
      statusCode: number;
      result: Record<string, unknown>;
    }

    type Query = Record<string, string | number | boolean>;

    class ROAClient {
      constructor(config: BaseConfig);
      endpoint: string;
      apiVersion: string;
      host: string;
      request<T = unknown>(
        method: string,
        uriPattern: string,
        query?: Query,
        body?: string,
        headers?: Record<string, string>,
        opts?: ROARequestOptions,
      ): Promise<T>;
      get<T = unknown>(path: string, query?: Query, headers?: Record<string, string>, opts?: ROARequestOptions): Promise<T>;
      delete<T = unknown>(path: string, query?: Query, headers?: Record<string, string>, opts?: ROARequestOptions): Promise<T>;
      post<T = unknown>(
        path: string,
        query?: Query,
        body?: string,
        headers?: Record<string, string>,
        opts?: ROARequestOptions,
      ): Promise<T>;
      put<T = unknown>(
        path: string,
        query?: Query,
        body?: string,
        headers?: Record<string, string>,
        opts?: ROARequestOptions,
      ): Promise<T>;
    }

    // `require('@alicloud/pop-core').RPCClient` is the class itself.
    const RPCClient: typeof PopCore;
    type RPCClient = PopCore;
  }

  /** module.exports: the RPC client class, with ROAClient and RPCClient attached. */
  class PopCore {
    constructor(config: PopCore.Config, verbose?: boolean);
    endpoint: string;
    apiVersion: string;
    /**
     * Sends an RPC request. Parameter values are stringified (undefined becomes "undefined");
     * arrays flatten to `Key.1`, `Key.1.Sub`.
     */
    request<T = Record<string, unknown>>(
      action: string,
      params?: Record<string, unknown>,
      opts?: PopCore.RequestOptions,
    ): Promise<T>;
  }

  export = PopCore;
}
