import type { DescMessage, Message } from '@bufbuild/protobuf';
import { isReflectMessage, reflect, type ReflectMessage } from '@bufbuild/protobuf/reflect';
import type { Interceptor } from '@connectrpc/connect';

import { invalidArgument } from '../core/errors.ts';

/** Deepest message nesting the scan follows; deeper messages are rejected as a whole. */
const MAX_DEPTH = 64;

/**
 * Rejects requests whose strings, map keys included, contain the NUL character (U+0000).
 * PostgreSQL cannot store NUL in text, so such a value would otherwise fail deep in a handler
 * as an internal error instead of INVALID_ARGUMENT naming the field.
 */
export function rejectNulCharacters(): Interceptor {
  return (next) => async (request) => {
    if (!request.stream) {
      const field = findNul(reflect(request.method.input as DescMessage, request.message as Message), '', 0);
      if (field !== undefined) {
        throw invalidArgument(field, `${field} contains a NUL character (\\u0000), which is not allowed in text`);
      }
    }
    return next(request);
  };
}

/** Returns the path of the first string containing NUL, or undefined when there is none. */
function findNul(message: ReflectMessage, prefix: string, depth: number): string | undefined {
  if (depth > MAX_DEPTH) return prefix || '(message)';
  for (const field of message.fields) {
    if (!message.isSet(field)) continue;
    const path = prefix ? `${prefix}.${field.name}` : field.name;
    const value = message.get(field);
    switch (field.fieldKind) {
      case 'scalar':
        if (typeof value === 'string' && value.includes('\0')) return path;
        break;
      case 'message':
        if (isReflectMessage(value)) {
          const found = findNul(value, path, depth + 1);
          if (found) return found;
        }
        break;
      case 'list':
        for (const item of value as Iterable<unknown>) {
          if (typeof item === 'string' && item.includes('\0')) return path;
          if (isReflectMessage(item)) {
            const found = findNul(item, path, depth + 1);
            if (found) return found;
          }
        }
        break;
      case 'map':
        for (const [key, item] of value as Iterable<[unknown, unknown]>) {
          if (typeof key === 'string' && key.includes('\0')) return path;
          if (typeof item === 'string' && item.includes('\0')) return `${path}.${String(key)}`;
          if (isReflectMessage(item)) {
            const found = findNul(item, `${path}.${String(key)}`, depth + 1);
            if (found) return found;
          }
        }
        break;
      case 'enum':
        break;
    }
  }
  return undefined;
}
