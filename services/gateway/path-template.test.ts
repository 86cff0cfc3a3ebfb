import { matchPathTemplate, parsePathTemplate, toFastifyPath } from './path-template.ts';

function match(template: string, path: string): Record<string, string> | undefined {
  const values = matchPathTemplate(parsePathTemplate(template), path);
  return values === undefined ? undefined : Object.fromEntries(values);
}

describe('path templates', () => {
  test('single variable and literal dot segments', () => {
    expect(match('/identity/{tenant}/.well-known/jwks.json', '/identity/acme/.well-known/jwks.json'))
      .toEqual({ tenant: 'acme' });
    expect(match('/identity/{tenant}/.well-known/jwks.json', '/identity/acme/jwks.json')).toBeUndefined();
    expect(match('/identity/{tenant}/.well-known/jwks.json', '/identity//.well-known/jwks.json')).toBeUndefined();
  });

  test('dotted field path and decoding', () => {
    expect(match('/v1/{user.name}', '/v1/a%20b%2Fc')).toEqual({ 'user.name': 'a b/c' });
  });

  test('multi-segment variables', () => {
    expect(match('/v1/{name=projects/*/files/**}', '/v1/projects/p1/files/a/b%2Fc'))
      .toEqual({ name: 'projects/p1/files/a/b%2Fc' });
    expect(match('/v1/{name=projects/*}', '/v1/folders/p1')).toBeUndefined();
    expect(match('/files/{path=**}', '/files/x/y/z')).toEqual({ path: 'x/y/z' });
    expect(match('/v1/{x=*}/end', '/v1/one/end')).toEqual({ x: 'one' });
  });

  test('custom verb', () => {
    expect(match('/v1/{name}:cancel', '/v1/op-1:cancel')).toEqual({ name: 'op-1' });
    expect(match('/v1/{name}:cancel', '/v1/op-1')).toBeUndefined();
  });

  test('Fastify paths name parameters by position', () => {
    expect(toFastifyPath(parsePathTemplate('/identity/{tenant}/.well-known/jwks.json')))
      .toBe('/identity/:s1/.well-known/jwks.json');
    expect(toFastifyPath(parsePathTemplate('/v1/{name=projects/*/files/**}'))).toBe('/v1/projects/:s2/files/*');
    expect(toFastifyPath(parsePathTemplate('/v1/things:batchGet'))).toBe('/v1/things::batchGet');
  });

  test('invalid templates throw', () => {
    expect(() => parsePathTemplate('v1/x')).toThrow('it must start with "/"');
    expect(() => parsePathTemplate('/v1/**/x')).toThrow('"**" must be the last segment');
    expect(() => parsePathTemplate('/v1/{name')).toThrow('has no matching "}"');
    expect(() => parsePathTemplate('/v1//x')).toThrow('empty segment');
  });
});
