import pino from 'pino';

/** The process-wide structured logger. `LOG_LEVEL` sets the level (default `info`). */
export const logger = pino({
  level: process.env.LOG_LEVEL ?? 'info',
  base: { service: 'tansu' },
  redact: {
    paths: [
      'password',
      '*.password',
      'token',
      '*.token',
      'refreshToken',
      '*.refreshToken',
      'accessToken',
      '*.accessToken',
      'authorization',
      '*.authorization',
      'secret',
      '*.secret',
      'clientSecret',
      '*.clientSecret',
    ],
    censor: '[redacted]',
  },
});

/** A logger, such as `logger` or one of its children. */
export type Logger = pino.Logger;
