import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { create, createFileRegistry, setExtension, type DescService } from '@bufbuild/protobuf';
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  MethodOptionsSchema,
} from '@bufbuild/protobuf/wkt';

import { http } from '#gen/google/api/annotations_pb.js';
import { HttpRuleSchema } from '#gen/google/api/http_pb.js';

import {
  buildDescriptorSet,
  checkDescriptorSet,
  checkEnvoyConfig,
  loadEnvoyConfig,
  loadGeneratedServices,
} from '../scripts/check-envoy.ts';

type YamlObject = Record<string, any>;

let services: DescService[];

beforeAll(async () => {
  services = await loadGeneratedServices();
});

/** Returns a fresh copy of envoy.yaml, so a test can break it without affecting the others. */
function config(): YamlObject {
  return structuredClone(loadEnvoyConfig()) as YamlObject;
}

function connectionManager(parsed: YamlObject): YamlObject {
  return parsed.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
}

function transcoderOptions(parsed: YamlObject): YamlObject {
  const filters = connectionManager(parsed).http_filters as YamlObject[];
  return filters.find((filter) => filter.name === 'envoy.filters.http.grpc_json_transcoder')!.typed_config;
}

function routes(parsed: YamlObject): YamlObject[] {
  return connectionManager(parsed).route_config.virtual_hosts[0].routes;
}

/** Builds a service with one google.api.http rule, as a later proto might add it. */
function reportsService(): DescService {
  const options = create(MethodOptionsSchema);
  setExtension(options, http, create(HttpRuleSchema, { pattern: { case: 'get', value: '/reports/api/{id}' } }));
  const file = create(FileDescriptorProtoSchema, {
    name: 'tansu/reports/v1/reports.proto',
    package: 'tansu.reports.v1',
    syntax: 'proto3',
    messageType: [
      {
        name: 'Report',
        field: [
          {
            name: 'id',
            jsonName: 'id',
            number: 1,
            type: FieldDescriptorProto_Type.STRING,
            label: FieldDescriptorProto_Label.OPTIONAL,
          },
        ],
      },
    ],
    service: [
      {
        name: 'Reports',
        method: [
          { name: 'GetReport', inputType: '.tansu.reports.v1.Report', outputType: '.tansu.reports.v1.Report', options },
        ],
      },
    ],
  });
  return createFileRegistry(file, () => undefined).getService('tansu.reports.v1.Reports')!;
}

describe('envoy.yaml', () => {
  test('agrees with the generated services', () => {
    expect(checkEnvoyConfig(loadEnvoyConfig(), services)).toEqual([]);
  });

  test('discovery finds every service', () => {
    const names = services.map((service) => service.typeName);

    expect(names).toEqual(
      expect.arrayContaining([
        'tansu.identity.v1.TenantAuth',
        'tansu.platform.v1.PlatformAuth',
        'tansu.platform.v1.Tenants',
        'grpc.health.v1.Health',
        'grpc.reflection.v1.ServerReflection',
      ]),
    );
  });

  test('new service with http rules fails', () => {
    const problems = checkEnvoyConfig(loadEnvoyConfig(), [...services, reportsService()]);

    expect(problems).toContain(
      "the transcoder's services lack tansu.reports.v1.Reports, which has google.api.http rules; add it",
    );
    expect(problems).toContain(
      'no route matches /reports/api/sample (GET /reports/api/{id} of tansu.reports.v1.Reports.GetReport); ' +
        'add a route to the tansu cluster',
    );
  });

  test('service left out of transcoder fails', () => {
    const parsed = config();
    const options = transcoderOptions(parsed);
    options.services = options.services.filter((name: string) => name !== 'tansu.platform.v1.Tenants');

    expect(checkEnvoyConfig(parsed, services)).toEqual([
      "the transcoder's services lack tansu.platform.v1.Tenants, which has google.api.http rules; add it",
    ]);
  });

  test('unknown transcoded service fails', () => {
    const parsed = config();
    transcoderOptions(parsed).services.push('tansu.gone.v1.Gone');

    expect(checkEnvoyConfig(parsed, services)).toEqual([
      'the transcoder lists tansu.gone.v1.Gone, which is not a generated service with google.api.http rules ' +
        '(Envoy fails at startup on an unknown service)',
    ]);
  });

  test('missing REST prefix fails', () => {
    const parsed = config();
    connectionManager(parsed).route_config.virtual_hosts[0].routes = routes(parsed).filter(
      (route) => route.match.prefix !== '/platform/',
    );

    const problems = checkEnvoyConfig(parsed, services);

    expect(problems).toContain(
      'no route matches /platform/api/tenants/sample (GET /platform/api/tenants/{id} of tansu.platform.v1.Tenants.GetTenant); ' +
        'add a route to the tansu cluster',
    );
    for (const problem of problems) {
      expect(problem).toMatch(/^no route matches \/platform\//);
    }
  });

  test('gRPC prefix to other cluster fails', () => {
    const parsed = config();
    routes(parsed).find((route) => route.match.prefix === '/grpc.health.v1.')!.route = { cluster: 'elsewhere' };

    const health = services.find((service) => service.typeName === 'grpc.health.v1.Health')!;
    const problems = checkEnvoyConfig(parsed, services);

    expect(problems).toHaveLength(health.methods.length);
    for (const method of health.methods) {
      expect(problems).toContain(
        `/grpc.health.v1.Health/${method.name} (gRPC method grpc.health.v1.Health.${method.name}) ` +
          'matches a route that does not go to the tansu cluster',
      );
    }
  });

  test('sign-in route without rate limit fails', () => {
    const parsed = config();
    delete routes(parsed).find((route) => route.name === 'tenant-sign-in-rest')!.typed_per_filter_config;

    expect(checkEnvoyConfig(parsed, services)).toEqual([
      'the route of /identity/api/sample/auth/signin (tansu.identity.v1.TenantAuth.SignIn) has no ' +
        'envoy.filters.http.local_ratelimit token bucket',
      'the route of /identity/api/sample/auth/signup (tansu.identity.v1.TenantAuth.SignUp) has no ' +
        'envoy.filters.http.local_ratelimit token bucket',
    ]);
  });

  test('metrics routed to Tansu fails', () => {
    const parsed = config();
    routes(parsed).find((route) => route.match.prefix === '/metrics')!.route = { cluster: 'tansu' };

    expect(checkEnvoyConfig(parsed, services)).toEqual([
      '/metrics must not be routed to Tansu: the metrics are scraped from the internal network',
    ]);
  });

  test('transcoder options must match ours', () => {
    const parsed = config();
    const options = transcoderOptions(parsed);
    options.ignore_unknown_query_parameters = false;
    delete options.convert_grpc_status;
    options.auto_mapping = true;
    options.print_options.preserve_proto_field_names = true;

    expect(checkEnvoyConfig(parsed, services)).toEqual([
      'ignore_unknown_query_parameters must be true: Tansu ignores unknown query parameters, as OAuth 2.0 requires',
      'convert_grpc_status must be true: Tansu sends errors as a google.rpc.Status JSON body',
      'auto_mapping must be false: POST /package.Service/Method belongs to the Connect protocol',
      "print_options.preserve_proto_field_names must be false, because Tansu's transcoder does not do that",
    ]);
  });

  test('cluster needs HTTP/2 and readiness check', () => {
    const parsed = config();
    const cluster = parsed.static_resources.clusters[0];
    delete cluster.typed_extension_protocol_options;
    cluster.health_checks[0].http_health_check.path = '/health/live';

    expect(checkEnvoyConfig(parsed, services)).toEqual([
      'the tansu cluster must speak HTTP/2 (explicit_http_config.http2_protocol_options), which gRPC needs',
      'the tansu cluster needs an HTTP health check of /health/ready',
    ]);
  });
});

describe('descriptor set', () => {
  let scratch: string;

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'tansu-envoy-test-'));
  });

  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  test('buf build output has what the transcoder needs', () => {
    const bytes = buildDescriptorSet(scratch);

    expect(checkDescriptorSet(bytes, services)).toEqual([]);
  });

  test('set without the new service fails', () => {
    const bytes = buildDescriptorSet(scratch);

    expect(checkDescriptorSet(bytes, [...services, reportsService()])).toContain(
      'the descriptor set lacks service tansu.reports.v1.Reports',
    );
  });
});
