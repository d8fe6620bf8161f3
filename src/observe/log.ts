import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Structured JSON logs on stdout (or a given stream, for tests). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, base: { service: 'holdfast' }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options);
}
