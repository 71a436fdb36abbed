// The credential helper's configuration in force: its ConfigMap as the watch sees it, parsed on every change. A
// bad new version is reported (log, Warning Event on the ConfigMap, metric) and the previous one kept, as the
// webhook's own configuration file is; fields accepted but not acted on are named once in a notice.
import { credentialHelper, helperBindings, type CredentialHelper } from '../acr/credential-helper.js';
import { parseAcrConfiguration } from '../config/acr-configuration.js';
import { silentLogger, type Logger } from '../pull-secrets/logger.js';
import type { EventType } from '../pull-secrets/store.js';
import type { ConfigMapData } from './config-map-watch.js';

export interface ConfigMapSource {
  current(): ConfigMapData | undefined;
  onChange(listener: () => void): void;
}

export interface CredentialHelperConfigOptions {
  source: ConfigMapSource;
  /** `namespace/name`, for messages. */
  location: string;
  /** The configuration file's region: acr-registry-info entries without regionId are in it. */
  defaultRegion: () => string | undefined;
  /** The webhook's namespace rule (kube-system, its own namespace, exclusions, opt-out label). */
  isExcluded: (namespace: string) => boolean;
  logger?: Logger;
  recordEvent?: (cm: ConfigMapData, type: EventType, reason: string, message: string) => Promise<void>;
  /** Metrics hook: a version of the ConfigMap was refused. */
  onInvalid?: () => void;
  /** The helper in force changed (appeared, changed, went away). */
  onChange?: (helper: CredentialHelper | undefined) => void;
}

export class CredentialHelperConfig {
  private helper: CredentialHelper | undefined;
  private seen: string | undefined;
  private notice = '';
  private readonly logger: Logger;

  constructor(private readonly o: CredentialHelperConfigOptions) {
    this.logger = o.logger ?? silentLogger;
    o.source.onChange(() => this.reload());
  }

  /** The helper in force; undefined while the ConfigMap does not exist (or never held a valid version). */
  current = (): CredentialHelper | undefined => this.helper;

  /** Reads the ConfigMap as the cache holds it now (the watch calls this on every change). */
  reload(): void {
    const cm = this.o.source.current();
    const version = cm ? `${cm.uid ?? ''}/${cm.resourceVersion ?? JSON.stringify(cm.data)}` : undefined;
    if (version === this.seen) return;
    this.seen = version;
    if (!cm) {
      if (this.helper) this.logger.info({ configMap: this.o.location }, 'credential helper ConfigMap removed: ServiceAccounts are no longer given pull Secrets');
      this.helper = undefined;
      this.o.onChange?.(undefined);
      return;
    }
    try {
      const parsed = parseAcrConfiguration(cm.data, this.o.defaultRegion(), this.o.location);
      const bindings = helperBindings(parsed.registries);
      this.helper = credentialHelper(parsed.scope, bindings, parsed.expiringThresholdMs, this.o.isExcluded);
      this.logger.info(
        {
          configMap: this.o.location,
          serviceAccounts: parsed.scope.serviceAccounts,
          namespaces: parsed.scope.namespaces,
          registries: parsed.registries.length,
          secretsPerNamespace: bindings.length,
          expiringThresholdMs: parsed.expiringThresholdMs,
        },
        'credential helper ConfigMap read: acting as aliyun-acr-credential-helper',
      );
      const notice = parsed.notHonoured.join('; ');
      if (notice && notice !== this.notice) {
        this.logger.warn({ configMap: this.o.location, fields: parsed.notHonoured }, `credential helper ConfigMap: accepted but not acted on: ${notice}`);
      }
      this.notice = notice;
      this.o.onChange?.(this.helper);
    } catch (e) {
      const message = (e as Error).message;
      this.o.onInvalid?.();
      this.logger.error({ configMap: this.o.location, error: message }, this.helper ? 'credential helper ConfigMap rejected; keeping the previous version' : 'credential helper ConfigMap rejected; ServiceAccounts are not given pull Secrets until it is fixed');
      void this.o.recordEvent?.(cm, 'Warning', 'InvalidConfiguration', `acr-pull-webhook cannot use this ConfigMap: ${message}${this.helper ? '; the previous version stays in force' : ''}`);
    }
  }
}
