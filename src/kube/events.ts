// core/v1 Events about the objects the webhook looks after (its Secrets, ServiceAccounts, the credential helper's
// ConfigMap): where `kubectl describe` shows a failure to the people who can fix it. Best effort: never rejects.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';
import type { EventType } from '../pull-secrets/store.js';
import { silentLogger, type Logger } from '../pull-secrets/logger.js';
import { describeError } from '../pull-secrets/util.js';
import { requestTimeout } from './api-util.js';

export interface InvolvedObject {
  kind: string;
  namespace: string;
  name: string;
  /** Absent for an object being created (admission of a CREATE): the Event still names it. */
  uid?: string;
  resourceVersion?: string;
}

export interface EventRecorderOptions {
  /** Event source (default `acr-pull-webhook`) and reporting instance (default the host name). */
  component?: string;
  instance?: string;
  requestTimeoutMs?: number;
  logger?: Logger;
}

export class EventRecorder {
  private readonly component: string;
  private readonly instance: string;
  private readonly requestTimeoutMs: number;
  private readonly logger: Logger;

  constructor(
    private readonly api: CoreV1Api,
    opts: EventRecorderOptions = {},
  ) {
    this.component = opts.component ?? 'acr-pull-webhook';
    this.instance = opts.instance ?? hostname();
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.logger = opts.logger ?? silentLogger;
  }

  /** The message must not carry secrets; it is cut to 1024 characters. */
  async record(object: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    const { namespace, name } = object;
    const now = new Date();
    const involved: CoreV1Event['involvedObject'] = { apiVersion: 'v1', kind: object.kind, namespace, name };
    if (object.uid) involved.uid = object.uid;
    if (object.resourceVersion) involved.resourceVersion = object.resourceVersion;
    const body: CoreV1Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${name.slice(0, 200)}.${now.getTime().toString(16)}${randomBytes(4).toString('hex')}`, namespace },
      involvedObject: involved,
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: this.component, host: this.instance },
      reportingComponent: this.component,
      reportingInstance: this.instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.api.createNamespacedEvent({ namespace, body }, requestTimeout(this.requestTimeoutMs));
    } catch (err) {
      this.logger.debug({ kind: object.kind, namespace, name, reason, err: describeError(err) }, 'recording event failed');
    }
  }
}
