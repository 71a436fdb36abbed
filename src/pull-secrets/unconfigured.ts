// Stands in for the credential chain where none is configured: it refuses clearly rather than hand out an
// empty or fake Secret, so a Pod is never admitted with a reference that cannot pull.
import { DenialError, type PullSecretProvider } from './types.js';

export const unconfiguredProvider: PullSecretProvider = {
  ensure: async () => {
    throw new DenialError(
      'acr-pull-webhook has no credential backend configured, so it cannot create the pull Secret; ' +
        'ask the cluster operator to configure the webhook\'s Alibaba Cloud identity',
      503,
      'ServiceUnavailable',
    );
  },
  ready: () => true,
};
