import { getOption, hasOption, type DescMethod, type DescService } from '@bufbuild/protobuf';

import { http } from '#gen/google/api/annotations_pb.js';
import type { HttpRule } from '#gen/google/api/http_pb.js';

/** One REST binding of an RPC, from its `google.api.http` rule or one of its additional bindings. */
export interface HttpRoute {
  service: DescService;
  method: DescMethod;
  /** Upper-case HTTP method: GET, PUT, POST, DELETE, PATCH, or a custom rule's kind. */
  verb: string;
  /** The path template as written, e.g. `/identity/{tenant}/.well-known/jwks.json`. */
  path: string;
  /** `*`, the name of the request field the body fills, or `''` for no body. */
  body: string;
  /** The name of the response field sent as the body, or `''` for the whole response. */
  responseBody: string;
  /** False for the rule itself, true for an entry of its `additional_bindings`. */
  additionalBinding: boolean;
}

/**
 * Collects the REST bindings of every method of `services` that has a `google.api.http`
 * rule, one route per binding (additional bindings flattened after their rule), in
 * declaration order. Methods without a rule are left out.
 */
export function collectHttpRules(services: DescService[]): HttpRoute[] {
  const routes: HttpRoute[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      if (!hasOption(method, http)) continue;
      const rule = getOption(method, http);
      routes.push(toRoute(service, method, rule, false));
      for (const binding of rule.additionalBindings) {
        routes.push(toRoute(service, method, binding, true));
      }
    }
  }
  return routes;
}

function toRoute(
  service: DescService,
  method: DescMethod,
  rule: HttpRule,
  additionalBinding: boolean,
): HttpRoute {
  const { pattern } = rule;
  let verb: string;
  let path: string;
  switch (pattern.case) {
    case 'get':
    case 'put':
    case 'post':
    case 'delete':
    case 'patch':
      verb = pattern.case.toUpperCase();
      path = pattern.value;
      break;
    case 'custom':
      verb = pattern.value.kind.toUpperCase();
      path = pattern.value.path;
      break;
    case undefined:
      throw new Error(`the google.api.http rule of ${method.parent.typeName}.${method.name} has no path`);
  }
  return {
    service,
    method,
    verb,
    path,
    body: rule.body,
    responseBody: rule.responseBody,
    additionalBinding,
  };
}
