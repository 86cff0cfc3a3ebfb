import type { DescField, DescFile } from '@bufbuild/protobuf';
import { getComments } from '@bufbuild/protoplugin';

import { collectHttpRules } from '../services/gateway/http-rules.ts';
import { loadProtoFiles } from './api-reference.ts';

// The rules every Tansu contract follows: each service, RPC, message, field and enum value has
// a doc comment, and each RPC has a google.api.http rule so REST and Envoy can reach it.
describe('proto contracts', () => {
  const files: DescFile[] = loadProtoFiles();
  const hasComment = (desc: Parameters<typeof getComments>[0]) => (getComments(desc).leading ?? '').trim().length > 0;

  test('every element has a doc comment', () => {
    const missing: string[] = [];
    for (const file of files) {
      for (const service of file.services) {
        if (!hasComment(service)) missing.push(service.typeName);
        for (const method of service.methods) {
          if (!hasComment(method)) missing.push(`${service.typeName}.${method.name}`);
        }
      }
      const messages = [...file.messages];
      while (messages.length > 0) {
        const message = messages.shift()!;
        messages.push(...message.nestedMessages);
        if (!hasComment(message)) missing.push(message.typeName);
        message.fields.forEach((field: DescField) => {
          if (!hasComment(field)) missing.push(`${message.typeName}.${field.name}`);
        });
      }
      for (const enumeration of file.enums) {
        if (!hasComment(enumeration)) missing.push(enumeration.typeName);
        for (const value of enumeration.values) {
          if (!hasComment(value)) missing.push(`${enumeration.typeName}.${value.name}`);
        }
      }
    }
    // On failure: add a comment saying what each listed element is or does.
    expect(missing).toEqual([]);
  });

  test('every RPC has an HTTP rule', () => {
    const services = files.flatMap((file) => file.services);
    const routed = new Set(collectHttpRules(services).map((route) => `${route.service.typeName}.${route.method.name}`));
    const unrouted = services.flatMap((service) =>
      service.methods.map((method) => `${service.typeName}.${method.name}`).filter((name) => !routed.has(name)),
    );
    expect(services.length).toBeGreaterThan(10);
    expect(unrouted).toEqual([]);
  });
});
