// A pino-compatible logging surface (fastify's `app.log` fits it), so nothing here depends on a logger package.
// Callers must never put secret material into the object or the message: log names, codes and reasons only.

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => {};

export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
