import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { DescService } from '@bufbuild/protobuf';

import { collectHttpRules } from '../services/gateway/http-rules.ts';
import { API_REFERENCE_PATH, loadProtoFiles, renderApiReference } from './api-reference.ts';

/** Imports every generated `_pb.js` file under sdk/ts/src/gen/tansu and returns its services. */
async function generatedServices(): Promise<DescService[]> {
  const root = 'sdk/ts/src/gen/tansu';
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('_pb.js'))
    .sort();
  const services: DescService[] = [];
  for (const file of files) {
    const module: Record<string, unknown> = await import(`#gen/tansu/${file}`);
    for (const value of Object.values(module)) {
      if ((value as { kind?: string }).kind === 'service') services.push(value as DescService);
    }
  }
  return services;
}

describe('API reference', () => {
  const rendered = renderApiReference(loadProtoFiles());

  test('docs/api.md is current', () => {
    const committed = readFileSync(API_REFERENCE_PATH, 'utf8');

    // On failure: run `npm run docs:api` and commit docs/api.md.
    expect(committed).toBe(rendered);
  });

  test('lists every generated RPC and REST route', async () => {
    const generated = await generatedServices();

    expect(generated.length).toBeGreaterThan(0);
    for (const service of generated) {
      expect(rendered).toContain(`## ${service.typeName}\n`);
      for (const method of service.methods) {
        expect(rendered).toContain(`### ${service.name}.${method.name}\n`);
      }
    }
    for (const route of collectHttpRules(generated)) {
      expect(rendered).toContain(`\`${route.verb} ${route.path}\``);
    }
  });

  test('includes field comments from the protos', () => {
    expect(rendered).toContain('| `email` | `string` | REQUIRED | Email address; compared case-insensitively. |');
  });
});
