import { deployFunction, queryTenant, type ExecutionRow } from './support/functions.ts';
import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import { startServer, type TestServer } from './support/server.ts';
import { waitFor } from './support/wait.ts';

const TENANT = 'events-e2e';

describe('event triggers end to end', () => {
  let server: TestServer;
  let adminToken: string;
  let userToken: string;
  let api: string;

  function executions(name: string): Promise<ExecutionRow[]> {
    return queryTenant<ExecutionRow>(
      server.databasePrefix,
      TENANT,
      `SELECT function_name, trigger_type, trigger_source, status, started_at, error
       FROM executions WHERE function_name = $1 ORDER BY started_at`,
      [name],
    );
  }

  async function createTrigger(name: string, body: Record<string, unknown>) {
    const response = await rest('POST', `${api}/functions/api/${TENANT}/functions/${name}/triggers`, { token: adminToken, body });
    expect(response.status).toBe(200);
    return response.body.trigger;
  }

  beforeAll(async () => {
    server = await startServer();
    api = server.baseUrl;
    adminToken = await platformAdminToken(api, server.adminEmail, server.adminPassword);
    const admin = await provisionTenant(api, adminToken, TENANT);
    const signedIn = await rest('POST', `${api}/identity/api/${TENANT}/auth/signin`, {
      body: { email: admin.adminEmail, password: admin.adminPassword },
    });
    expect(signedIn.status).toBe(200);
    userToken = signedIn.body.accessToken;
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  test('fan-out reaches every matching function', async () => {
    const seen = 'export default async (request) => ({ type: request.body.type, id: request.body.id });';
    await deployFunction(server.databasePrefix, TENANT, 'on-any-doc', seen);
    await deployFunction(server.databasePrefix, TENANT, 'on-created', seen);
    await deployFunction(server.databasePrefix, TENANT, 'on-user', seen);
    const anyDoc = await createTrigger('on-any-doc', { eventPattern: 'document.*' });
    await createTrigger('on-created', { eventPattern: 'document.created' });
    await createTrigger('on-user', { eventPattern: 'user.*' });
    expect(anyDoc.enabled).toBe(true);

    const created = await rest('POST', `${api}/data/api/${TENANT}/collections/notes/documents`, {
      token: userToken,
      body: { data: { title: 'first' } },
    });
    expect(created.status).toBe(200);
    const id = created.body.document.id;
    const updated = await rest('PATCH', `${api}/data/api/${TENANT}/collections/notes/documents/${id}`, {
      token: userToken,
      body: { data: { title: 'second' } },
    });
    expect(updated.status).toBe(200);
    expect(updated.body.document.data).toEqual({ title: 'second' });
    const signIn = await rest('POST', `${api}/identity/api/${TENANT}/auth/signin`, {
      body: { email: `admin@${TENANT}.local`, password: 'wrong password for sure' },
    });
    expect(signIn.status).toBe(401);

    await waitFor('two executions of on-any-doc', async () => (await executions('on-any-doc')).length >= 2);
    await waitFor('one execution of on-created', async () => (await executions('on-created')).length >= 1);

    const events = await queryTenant<{ event_id: string; type: string }>(
      server.databasePrefix,
      TENANT,
      "SELECT event_id, type FROM outbox WHERE type LIKE 'document.%' ORDER BY id",
    );
    expect(events.map((event) => event.type)).toEqual(['document.created', 'document.updated']);
    const anyRuns = await executions('on-any-doc');
    expect(anyRuns.map((run) => run.trigger_type)).toEqual(['event', 'event']);
    expect(anyRuns.map((run) => run.status)).toEqual(['succeeded', 'succeeded']);
    expect(new Set(anyRuns.map((run) => run.trigger_source))).toEqual(new Set(events.map((event) => event.event_id)));
    const createdRuns = await executions('on-created');
    expect(createdRuns).toHaveLength(1);
    expect(createdRuns[0].trigger_source).toBe(events[0].event_id);


    const listed = await rest('GET', `${api}/functions/api/${TENANT}/functions/on-any-doc/triggers`, { token: adminToken });
    expect(listed.status).toBe(200);
    expect(listed.body.triggers).toHaveLength(1);
    expect(listed.body.triggers[0].lastInvokeTime).toBeDefined();
  }, 60_000);

  test('user.signed_in reaches a user.* trigger', async () => {
    const signedIn = await rest('POST', `${api}/identity/api/${TENANT}/auth/signup`, {
      body: { email: 'ada@example.com', password: 'correct horse battery staple' },
    });
    expect(signedIn.status).toBe(200);
    const again = await rest('POST', `${api}/identity/api/${TENANT}/auth/signin`, {
      body: { email: 'ada@example.com', password: 'correct horse battery staple' },
    });
    expect(again.status).toBe(200);
    await waitFor('user.created and user.signed_in runs', async () => (await executions('on-user')).length >= 2);
    const types = await queryTenant<{ type: string }>(
      server.databasePrefix,
      TENANT,
      "SELECT o.type FROM executions e JOIN outbox o ON o.event_id::text = e.trigger_source WHERE e.function_name = 'on-user' ORDER BY o.id",
    );
    expect(types.map((row) => row.type)).toContain('user.created');
    expect(types.map((row) => row.type)).toContain('user.signed_in');
  }, 30_000);

  test('failing function retries with backoff, dead-letters, and replays once', async () => {
    await deployFunction(server.databasePrefix, TENANT, 'always-fails', 'export default async () => { throw new Error("boom"); };');
    await createTrigger('always-fails', { eventPattern: 'order.placed', maxAttempts: 3, backoffSeconds: 2 });
    await queryTenant(server.databasePrefix, TENANT, "SELECT tansu_emit_event('order.placed', 'orders/1', '{}')");

    await waitFor('three failed runs', async () => (await executions('always-fails')).length >= 3, 20_000);
    let deadLetters: any[] = [];
    await waitFor('the dead letter', async () => {
      const listed = await rest('GET', `${api}/functions/api/${TENANT}/dead-letters?functionName=always-fails`, { token: adminToken });
      deadLetters = listed.body.deadLetters ?? [];
      return deadLetters.length === 1;
    });
    expect(deadLetters[0].attempts).toBe(3);
    expect(deadLetters[0].lastError).toContain('boom');

    // A 4th attempt would come 8 s later; 1 s is enough to see none was claimed early.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const runs = await executions('always-fails');
    expect(runs).toHaveLength(3);
    expect(runs.every((run) => run.status === 'error')).toBe(true);
    const gaps = [1, 2].map((index) => runs[index].started_at.getTime() - runs[index - 1].started_at.getTime());
    expect(gaps[0]).toBeGreaterThanOrEqual(2000);
    expect(gaps[1]).toBeGreaterThanOrEqual(4000);

    const replayed = await rest('POST', `${api}/functions/api/${TENANT}/dead-letters/replay`, {
      token: adminToken,
      body: { ids: [deadLetters[0].id] },
    });
    expect(replayed.status).toBe(200);
    expect(replayed.body.replayedIds).toEqual([deadLetters[0].id]);
    await waitFor('three replayed runs', async () => (await executions('always-fails')).length >= 6, 20_000);
    await waitFor('the dead letter failing again', async () => {
      const listed = await rest('GET', `${api}/functions/api/${TENANT}/dead-letters?functionName=always-fails`, { token: adminToken });
      return listed.body.deadLetters?.[0]?.replayCount === 1 && listed.body.deadLetters[0].replayTime === undefined;
    });
    const after = await executions('always-fails');
    expect(after).toHaveLength(6);
    expect(after.slice(3).map((run) => run.trigger_type)).toEqual(['replay', 'replay', 'replay']);
  }, 60_000);

  test('bad cron expressions are INVALID_ARGUMENT with the reason', async () => {
    await deployFunction(server.databasePrefix, TENANT, 'nightly', 'export default async () => "ok";');
    const bad = await rest('POST', `${api}/functions/api/${TENANT}/functions/nightly/triggers`, {
      token: adminToken,
      body: { cron: '61 * * * *' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toContain('minute');
    const good = await createTrigger('nightly', { cron: '0 9 * * *', timeZone: 'Europe/Berlin' });
    expect(good.timeZone).toBe('Europe/Berlin');

    const preview = await rest(
      'GET',
      `${api}/functions/api/${TENANT}/schedules/preview?cron=${encodeURIComponent('0 9 * * *')}&timeZone=Europe/Berlin&count=2&after=2025-03-29T12:00:00Z`,
      { token: adminToken },
    );
    expect(preview.status).toBe(200);
    expect(preview.body.fireTimes.map((fire: { time: string }) => fire.time)).toEqual([
      '2025-03-30T07:00:00Z',
      '2025-03-31T07:00:00Z',
    ]);
    expect(preview.body.fireTimes[0].localTime).toBe('2025-03-30T09:00:00+02:00');
  }, 30_000);

  test('documents reject a token of another tenant', async () => {
    const response = await rest('GET', `${api}/data/api/${TENANT}/collections/notes/documents`, { token: adminToken });
    expect(response.status).toBe(403);
  });
});
