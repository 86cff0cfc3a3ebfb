/**
 * Event type patterns of event triggers. Event types and patterns are dot-separated
 * segments of lowercase letters, digits and underscores, such as `document.created`. In a
 * pattern, a `*` segment matches exactly one segment of any content, so `document.*`
 * matches `document.created` but not `document` or `document.created.v2`, and `*.deleted`
 * matches `user.deleted`. Segments compare whole, so `document.*` does not match
 * `documents.created`.
 */
import { domainError } from '../core/errors.ts';

/** A validated event pattern; build one with {@link parseEventPattern}. */
export interface EventPattern {
  /** The pattern as given. */
  readonly source: string;
  /** The segments, where `*` is the wildcard. */
  readonly segments: readonly string[];
}

/** Maximum length of a pattern, in characters. */
export const MAX_EVENT_PATTERN_LENGTH = 200;

const segmentPattern = /^(?:[a-z0-9_]+|\*)$/;

/**
 * Validates `pattern` and splits it into segments. Throws INVALID_ARGUMENT naming the
 * first invalid segment.
 */
export function parseEventPattern(pattern: string): EventPattern {
  const invalid = (reason: string) =>
    domainError('INVALID_ARGUMENT', `invalid event pattern "${pattern}": ${reason}`, {
      metadata: { field: 'event_pattern' },
    });

  if (pattern.length === 0) throw invalid('the pattern is empty');
  if (pattern.length > MAX_EVENT_PATTERN_LENGTH) {
    throw invalid(`the pattern is longer than ${MAX_EVENT_PATTERN_LENGTH} characters`);
  }

  const segments = pattern.split('.');
  segments.forEach((segment, index) => {
    if (segment === '') {
      throw invalid(`segment ${index + 1} is empty; separate segments with a single "."`);
    }
    if (!segmentPattern.test(segment)) {
      throw invalid(
        `segment "${segment}" must be "*" or contain only lowercase letters, digits and "_"`,
      );
    }
  });
  return { source: pattern, segments };
}

/**
 * Reports whether event type `type` matches `pattern`, which is either parsed already or
 * a string that is parsed first (throwing INVALID_ARGUMENT when invalid).
 */
export function matchesEventPattern(pattern: EventPattern | string, type: string): boolean {
  const { segments } = typeof pattern === 'string' ? parseEventPattern(pattern) : pattern;
  const typeSegments = type.split('.');
  if (typeSegments.length !== segments.length) return false;
  return segments.every((segment, index) => {
    const typeSegment = typeSegments[index];
    if (segment === '*') return typeSegment !== '';
    return segment === typeSegment;
  });
}
