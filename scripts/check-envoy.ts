// Checks envoy/envoy.yaml against the protos, so the production front cannot fall behind the
// services: every service with google.api.http rules must be listed for Envoy's transcoder,
// every REST path and every gRPC method must be routed to the Tansu cluster, and the
// transcoder must print JSON as Tansu's own transcoder does. Also builds the descriptor set
// Envoy loads and checks that it contains what the transcoder needs.
// Run it with `npm run check:envoy`; envoy/envoy-config.test.ts runs the same checks in Jest.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { fromBinary, type DescFile, type DescService } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import yaml from 'js-yaml';

import { collectHttpRules } from '../services/gateway/http-rules.ts';
import { parsePathTemplate } from '../services/gateway/path-template.ts';

/** The repository root, found from this file's location. */
export const REPOSITORY_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The Envoy configuration, relative to the repository root. */
export const ENVOY_CONFIG_PATH = 'envoy/envoy.yaml';

/** The cluster of Tansu servers that every Tansu route must send requests to. */
export const TANSU_CLUSTER = 'tansu';

/** The file name `npm run envoy:descriptor` writes and the transcoder's proto_descriptor loads. */
export const DESCRIPTOR_FILE_NAME = 'tansu.binpb';

/**
 * Methods that take passwords. Their REST and gRPC routes must carry a local rate limit, so a
 * password-guessing flood is cut at Envoy before it reaches argon2 in Tansu.
 */
export const RATE_LIMITED_METHODS = [
  'tansu.identity.v1.TenantAuth.SignIn',
  'tansu.identity.v1.TenantAuth.SignUp',
  'tansu.platform.v1.PlatformAuth.CreateToken',
];

const GENERATED_ROOTS = ['sdk/ts/src/gen/tansu', 'sdk/ts/src/gen/grpc'];
const HTTP_CONNECTION_MANAGER = 'envoy.filters.network.http_connection_manager';
const TRANSCODER = 'envoy.filters.http.grpc_json_transcoder';
const LOCAL_RATE_LIMIT = 'envoy.filters.http.local_ratelimit';

/** A YAML mapping, as js-yaml returns it. */
type YamlObject = Record<string, unknown>;

/**
 * Imports every generated `*_pb.js` file under `sdk/ts/src/gen/tansu` and
 * `sdk/ts/src/gen/grpc` and returns the services they declare. Files are found by walking the
 * folders, so a service added later is checked without editing this script.
 */
export async function loadGeneratedServices(root: string = REPOSITORY_ROOT): Promise<DescService[]> {
  const services = new Map<string, DescService>();
  for (const folder of GENERATED_ROOTS) {
    for (const path of listFiles(join(root, folder)).filter((file) => file.endsWith('_pb.js'))) {
      const module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
      for (const value of Object.values(module)) {
        if (!isDescFile(value)) continue;
        for (const service of value.services) services.set(service.typeName, service);
      }
    }
  }
  return [...services.values()];
}

/** Reads and parses envoy/envoy.yaml. */
export function loadEnvoyConfig(root: string = REPOSITORY_ROOT): unknown {
  return yaml.safeLoad(readFileSync(join(root, ENVOY_CONFIG_PATH), 'utf8'));
}

/**
 * Returns the ways `config` (a parsed envoy.yaml) disagrees with `services`, one sentence each,
 * or an empty list when it agrees. Routes are matched as Envoy matches them: the first route of
 * the virtual host whose `prefix`, `path`, `path_separated_prefix` or `safe_regex` fits wins.
 * Routes with header or query parameter matchers are treated as not matching, because a
 * sample request cannot tell whether it would carry those headers.
 *
 * This does not validate the configuration against Envoy's own schema: misspelt fields and
 * wrong types are found only when Envoy loads the file.
 */
export function checkEnvoyConfig(config: unknown, services: DescService[]): string[] {
  const managers = findConnectionManagers(config);
  if (managers.length === 0) return [`${ENVOY_CONFIG_PATH} has no ${HTTP_CONNECTION_MANAGER} filter`];

  const problems: string[] = [];
  for (const manager of managers) {
    problems.push(...checkTranscoder(manager, services));
    problems.push(...checkRoutes(manager, services));
    if (manager.use_remote_address !== true) {
      problems.push(
        'use_remote_address must be true, so Envoy sets X-Forwarded-For from the TLS peer, ' +
          'as TANSU_TRUSTED_PROXIES expects',
      );
    }
  }
  problems.push(...checkCluster(config));
  return problems;
}

/**
 * Returns what the descriptor set in `bytes` lacks for Envoy's transcoder: a transcoded
 * service, an imported file (Envoy needs every type the services use, and error_details.proto
 * to print error details), or source info.
 */
export function checkDescriptorSet(bytes: Uint8Array, services: DescService[]): string[] {
  const set = fromBinary(FileDescriptorSetSchema, bytes);
  const files = new Map(set.file.map((file) => [file.name, file]));
  const declared = new Set(
    set.file.flatMap((file) => file.service.map((service) => `${file.package}.${service.name}`)),
  );
  const problems: string[] = [];
  for (const service of servicesWithHttpRules(services)) {
    if (!declared.has(service.typeName)) problems.push(`the descriptor set lacks service ${service.typeName}`);
  }
  for (const name of ['google/api/annotations.proto', 'google/api/http.proto', 'google/rpc/error_details.proto']) {
    if (!files.has(name)) problems.push(`the descriptor set lacks the import ${name}`);
  }
  for (const service of services) {
    for (const dependency of service.file.dependencies) {
      if (!files.has(dependency.name + '.proto')) {
        problems.push(`the descriptor set lacks ${dependency.name}.proto, imported by ${service.file.name}.proto`);
      }
    }
  }
  if (!set.file.some((file) => file.sourceCodeInfo !== undefined)) {
    problems.push('the descriptor set has no source info; build it without --exclude-source-info');
  }
  return problems;
}

/** Builds the descriptor set as `npm run envoy:descriptor` does, into `directory`, and returns it. */
export function buildDescriptorSet(directory: string, root: string = REPOSITORY_ROOT): Uint8Array {
  const output = join(directory, DESCRIPTOR_FILE_NAME);
  const buf = join(root, 'node_modules/.bin/buf');
  const result = spawnSync(buf, ['build', '--as-file-descriptor-set', '-o', output], {
    cwd: root,
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    throw new Error(`buf build failed (exit ${result.status ?? result.signal}): ${result.stderr}`);
  }
  return readFileSync(output);
}

/** Returns the services that have at least one google.api.http rule. */
export function servicesWithHttpRules(services: DescService[]): DescService[] {
  return services.filter((service) => collectHttpRules([service]).length > 0);
}

function checkTranscoder(manager: YamlObject, services: DescService[]): string[] {
  const filters = asArray(manager.http_filters).map(asObject);
  const transcoder = filters.find((filter) => filter.name === TRANSCODER);
  if (transcoder === undefined) return [`the http_filters lack ${TRANSCODER}`];
  const options = asObject(transcoder.typed_config);

  const problems: string[] = [];
  const listed = new Set(asArray(options.services).map(String));
  const expected = servicesWithHttpRules(services).map((service) => service.typeName);
  for (const name of expected) {
    if (!listed.has(name)) {
      problems.push(`the transcoder's services lack ${name}, which has google.api.http rules; add it`);
    }
  }
  for (const name of listed) {
    if (!expected.includes(name)) {
      problems.push(
        `the transcoder lists ${name}, which is not a generated service with google.api.http rules ` +
          '(Envoy fails at startup on an unknown service)',
      );
    }
  }

  if (basename(String(options.proto_descriptor ?? '')) !== DESCRIPTOR_FILE_NAME) {
    problems.push(`the transcoder's proto_descriptor must name ${DESCRIPTOR_FILE_NAME}, which npm run envoy:descriptor writes`);
  }
  if (options.ignore_unknown_query_parameters !== true) {
    problems.push('ignore_unknown_query_parameters must be true: Tansu ignores unknown query parameters, as OAuth 2.0 requires');
  }
  if (options.convert_grpc_status !== true) {
    problems.push('convert_grpc_status must be true: Tansu sends errors as a google.rpc.Status JSON body');
  }
  if (options.auto_mapping === true) {
    problems.push('auto_mapping must be false: POST /package.Service/Method belongs to the Connect protocol');
  }
  // Tansu writes protobuf JSON with protobuf-es defaults, and each of these options changes it.
  const printOptions = asObject(options.print_options);
  for (const name of ['add_whitespace', 'always_print_primitive_fields', 'always_print_enums_as_ints', 'preserve_proto_field_names']) {
    if (printOptions[name] === true) {
      problems.push(`print_options.${name} must be false, because Tansu's transcoder does not do that`);
    }
  }
  return problems;
}

function checkRoutes(manager: YamlObject, services: DescService[]): string[] {
  const routes = routesOf(manager);
  const problems: string[] = [];
  const requireTansu = (path: string, what: string): YamlObject | undefined => {
    const route = firstMatchingRoute(routes, path);
    if (route === undefined) {
      problems.push(`no route matches ${path} (${what}); add a route to the ${TANSU_CLUSTER} cluster`);
      return undefined;
    }
    const cluster = asObject(route.route).cluster;
    if (cluster !== TANSU_CLUSTER) {
      problems.push(`${path} (${what}) matches a route that does not go to the ${TANSU_CLUSTER} cluster`);
      return undefined;
    }
    return route;
  };

  for (const rule of collectHttpRules(services)) {
    const name = `${rule.service.typeName}.${rule.method.name}`;
    requireTansu(samplePath(rule.path), `${rule.verb} ${rule.path} of ${name}`);
  }
  for (const service of services) {
    for (const method of service.methods) {
      requireTansu(`/${service.typeName}/${method.name}`, `gRPC method ${service.typeName}.${method.name}`);
    }
  }

  for (const name of RATE_LIMITED_METHODS) {
    problems.push(...checkRateLimited(name, services, routes));
  }

  const metrics = firstMatchingRoute(routes, '/metrics');
  if (metrics !== undefined && asObject(metrics.route).cluster === TANSU_CLUSTER) {
    problems.push('/metrics must not be routed to Tansu: the metrics are scraped from the internal network');
  }
  return problems;
}

function checkRateLimited(name: string, services: DescService[], routes: YamlObject[]): string[] {
  const serviceName = name.slice(0, name.lastIndexOf('.'));
  const methodName = name.slice(name.lastIndexOf('.') + 1);
  const service = services.find((candidate) => candidate.typeName === serviceName);
  const method = service?.methods.find((candidate) => candidate.name === methodName);
  if (service === undefined || method === undefined) {
    return [`${name} no longer exists; update RATE_LIMITED_METHODS in scripts/check-envoy.ts`];
  }

  const paths = [`/${serviceName}/${methodName}`, ...collectHttpRules([service])
    .filter((rule) => rule.method === method)
    .map((rule) => samplePath(rule.path))];
  const problems: string[] = [];
  for (const path of paths) {
    const route = firstMatchingRoute(routes, path);
    const limit = asObject(asObject(route?.typed_per_filter_config)[LOCAL_RATE_LIMIT]);
    if (limit.token_bucket === undefined) {
      problems.push(`the route of ${path} (${name}) has no ${LOCAL_RATE_LIMIT} token bucket`);
    }
  }
  return problems;
}

function checkCluster(config: unknown): string[] {
  const clusters = asArray(asObject(asObject(config).static_resources).clusters).map(asObject);
  const cluster = clusters.find((candidate) => candidate.name === TANSU_CLUSTER);
  if (cluster === undefined) return [`there is no cluster named ${TANSU_CLUSTER}`];

  const problems: string[] = [];
  const protocol = asObject(
    asObject(cluster.typed_extension_protocol_options)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'],
  );
  if (asObject(protocol.explicit_http_config).http2_protocol_options === undefined) {
    problems.push(`the ${TANSU_CLUSTER} cluster must speak HTTP/2 (explicit_http_config.http2_protocol_options), which gRPC needs`);
  }
  const checks = asArray(cluster.health_checks).map(asObject);
  if (!checks.some((check) => asObject(check.http_health_check).path === '/health/ready')) {
    problems.push(`the ${TANSU_CLUSTER} cluster needs an HTTP health check of /health/ready`);
  }
  return problems;
}

/** Returns a concrete path the template matches: `*` becomes one segment, `**` two. */
function samplePath(template: string): string {
  const parsed = parsePathTemplate(template);
  const segments = parsed.segments.map((segment) => {
    switch (segment.kind) {
      case 'literal':
        return segment.value;
      case 'single':
        return 'sample';
      case 'rest':
        return 'sample/rest';
    }
  });
  return '/' + segments.join('/') + (parsed.verb === undefined ? '' : `:${parsed.verb}`);
}

function firstMatchingRoute(routes: YamlObject[], path: string): YamlObject | undefined {
  return routes.find((route) => routeMatches(asObject(route.match), path));
}

function routeMatches(match: YamlObject, path: string): boolean {
  if (match.headers !== undefined || match.query_parameters !== undefined) return false;
  if (typeof match.prefix === 'string') return path.startsWith(match.prefix);
  if (typeof match.path === 'string') return path === match.path;
  if (typeof match.path_separated_prefix === 'string') {
    const prefix = match.path_separated_prefix;
    return path === prefix || path.startsWith(prefix + '/');
  }
  const regex = asObject(match.safe_regex).regex;
  // Envoy's safe_regex (RE2) must match the whole path.
  if (typeof regex === 'string') return new RegExp(`^(?:${regex})$`).test(path);
  return false;
}

function routesOf(manager: YamlObject): YamlObject[] {
  const hosts = asArray(asObject(manager.route_config).virtual_hosts).map(asObject);
  const host = hosts.find((candidate) => asArray(candidate.domains).includes('*')) ?? hosts[0];
  return asArray(host?.routes).map(asObject);
}

function findConnectionManagers(config: unknown): YamlObject[] {
  const listeners = asArray(asObject(asObject(config).static_resources).listeners).map(asObject);
  return listeners
    .flatMap((listener) => asArray(listener.filter_chains).map(asObject))
    .flatMap((chain) => asArray(chain.filters).map(asObject))
    .filter((filter) => filter.name === HTTP_CONNECTION_MANAGER)
    .map((filter) => asObject(filter.typed_config));
}

function asObject(value: unknown): YamlObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as YamlObject) : {};
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function isDescFile(value: unknown): value is DescFile {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'file';
}

function listFiles(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

async function main(): Promise<void> {
  const services = await loadGeneratedServices();
  const problems = checkEnvoyConfig(loadEnvoyConfig(), services);
  const scratch = mkdtempSync(join(tmpdir(), 'tansu-envoy-'));
  try {
    problems.push(...checkDescriptorSet(buildDescriptorSet(scratch), services));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  if (problems.length > 0) {
    process.stderr.write(`${ENVOY_CONFIG_PATH} disagrees with the protos:\n  ${problems.join('\n  ')}\n`);
    process.exit(1);
  }
  const transcoded = servicesWithHttpRules(services).length;
  process.stdout.write(`${ENVOY_CONFIG_PATH} routes ${services.length} services (${transcoded} transcoded)\n`);
}

if (import.meta.main) await main();
