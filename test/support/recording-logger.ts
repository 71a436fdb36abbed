// A pull-secrets Logger that records every line as [level, fields, message], for tests that assert exact logs.
import type { Logger } from '../../src/pull-secrets/logger.js';

export function recordingLogger(): { logger: Logger; lines: Array<[string, object, string | undefined]> } {
  const lines: Array<[string, object, string | undefined]> = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void =>
      void lines.push([level, obj, msg]);
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}
