import { domainError } from './errors.ts';

/** Page size used when a request leaves `page_size` at zero. */
export const DEFAULT_PAGE_SIZE = 50;
/** Largest page a list call returns. */
export const MAX_PAGE_SIZE = 1000;

/** Validates `page_size`: zero means the default, negative or above the maximum is rejected. */
export function pageSize(requested: number): number {
  if (requested === 0) return DEFAULT_PAGE_SIZE;
  if (requested < 0 || requested > MAX_PAGE_SIZE) {
    throw domainError('INVALID_ARGUMENT', `page_size must be from 1 to ${MAX_PAGE_SIZE}, or 0 for ${DEFAULT_PAGE_SIZE}`, {
      metadata: { field: 'page_size' },
    });
  }
  return requested;
}

/**
 * Encodes a keyset cursor as an opaque page token bound to one list (`kind`), so a token of one
 * list is rejected by another.
 */
export function encodePageToken(kind: string, cursor: string): string {
  return Buffer.from(JSON.stringify({ k: kind, c: cursor })).toString('base64url');
}

/** Decodes a page token of the list `kind`; undefined for the first page. */
export function decodePageToken(token: string, kind: string): string | undefined {
  if (!token) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (parsed.k === kind && typeof parsed.c === 'string') return parsed.c;
  } catch {
    // Falls through to the error below.
  }
  throw domainError('INVALID_PAGE_TOKEN', 'page_token is not a token returned by this list; start again without it', {
    metadata: { field: 'page_token' },
  });
}
