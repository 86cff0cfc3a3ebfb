import { Code, ConnectError } from '@connectrpc/connect';

import { matchesEventPattern, parseEventPattern } from './event-pattern.ts';

describe('matchesEventPattern', () => {
  test.each([
    ['document.*', 'document.created', true],
    ['document.*', 'document.deleted', true],
    ['document.*', 'document', false],
    ['document.*', 'document.created.v2', false],
    ['document.*', 'documents.created', false],
    ['document.*', 'document.', false],
    ['*.deleted', 'user.deleted', true],
    ['*.deleted', 'document.deleted', true],
    ['*.deleted', 'user.created', false],
    ['*.deleted', 'deleted', false],
    ['*.deleted', 'a.user.deleted', false],
    ['document.created', 'document.created', true],
    ['document.created', 'document.created2', false],
    ['document.created', 'Document.created', false],
    ['*', 'document', true],
    ['*', 'document.created', false],
    ['*.*', 'document.created', true],
    ['*.*', 'document', false],
    ['user.*', 'user.signed_in', true],
    ['user.*', 'users.signed_in', false],
  ])('%s against %s is %s', (pattern, type, expected) => {
    expect(matchesEventPattern(pattern, type)).toBe(expected);
    expect(matchesEventPattern(parseEventPattern(pattern), type)).toBe(expected);
  });
});

describe('parseEventPattern', () => {
  test('splits into segments', () => {
    expect(parseEventPattern('collection.*').segments).toEqual(['collection', '*']);
  });

  test.each([
    ['', /the pattern is empty/],
    ['document.', /segment 2 is empty/],
    ['.document', /segment 1 is empty/],
    ['document..created', /segment 2 is empty/],
    ['Document.created', /segment "Document" must be "\*"/],
    ['document.cre*', /segment "cre\*" must be "\*"/],
    ['document.**', /segment "\*\*" must be "\*"/],
    ['document created', /segment "document created"/],
    ['document-created', /segment "document-created"/],
    ['a'.repeat(201), /longer than 200 characters/],
  ])('rejects %j', (pattern, message) => {
    let error: unknown;
    try {
      parseEventPattern(pattern);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toMatch(message);
  });
});
