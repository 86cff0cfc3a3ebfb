import type pg from 'pg';

import { createMigratedDatabase } from '../../test/support/database.ts';
import type { InvokeResult } from './dispatcher.ts';
import { createScheduler, type ScheduledRun, type Scheduler } from './scheduler.ts';

type Database = Awaited<ReturnType<typeof createMigratedDatabase>>;

const start = new Date('2026-01-01T00:00:00Z');

function at(offsetMinutes: number): Date {
  return new Date(start.getTime() + offsetMinutes * 60_000);
}

async function addScheduleTrigger(
  pool: pg.Pool,
  functionName: string,
  cron: string,
  settings: { missed?: string; overlap?: string; timeZone?: string } = {},
): Promise<string> {
  await pool.query('INSERT INTO functions (name) VALUES ($1) ON CONFLICT DO NOTHING', [functionName]);
  const { rows } = await pool.query(
    `INSERT INTO triggers (function_name, kind, cron, time_zone, missed_slot_policy, overlap_policy, created_at)
     VALUES ($1, 'schedule', $2, $3, $4, $5, $6) RETURNING id`,
    [functionName, cron, settings.timeZone ?? 'UTC', settings.missed ?? 'latest', settings.overlap ?? 'skip', start],
  );
  return rows[0].id;
}

function slotsOf(calls: ScheduledRun[], functionName: string): string[] {
  return calls.filter((call) => call.functionName === functionName).map((call) => call.slot.toISOString());
}

describe('scheduler', () => {
  let database: Database;
  let clock: Date;
  const schedulers: Scheduler[] = [];

  function scheduler(invoke: (run: ScheduledRun) => Promise<InvokeResult>): Scheduler {
    const created = createScheduler({ pool: database.pool, tenant: 't', invoke, now: () => clock });
    schedulers.push(created);
    return created;
  }

  function recorder() {
    const calls: ScheduledRun[] = [];
    const invoke = async (run: ScheduledRun): Promise<InvokeResult> => {
      calls.push(run);
      return { ok: true };
    };
    return { calls, invoke };
  }

  beforeEach(async () => {
    database = await createMigratedDatabase('tenant');
  });

  afterEach(async () => {
    await Promise.all(schedulers.splice(0).map((created) => created.idle()));
    await database.drop();
  });

  test('two schedulers claim each slot once', async () => {
    await addScheduleTrigger(database.pool, 'every-minute', '* * * * *', { missed: 'all' });
    const { calls, invoke } = recorder();
    const first = scheduler(invoke);
    const second = scheduler(invoke);

    for (const minute of [10.5, 10.5, 12, 12.2, 13]) {
      clock = at(minute);
      await Promise.all([first.tick(), second.tick()]);
      await Promise.all([first.idle(), second.idle()]);
    }

    const slots = slotsOf(calls, 'every-minute');
    expect(slots).toEqual(Array.from({ length: 13 }, (_, index) => at(index + 1).toISOString()));
    const { rows } = await database.pool.query(
      `SELECT count(*)::int AS n FROM schedule_slots WHERE status = 'succeeded'`,
    );
    expect(rows[0].n).toBe(13);
  });

  test('missed-slot policies with a frozen clock', async () => {
    const latestId = await addScheduleTrigger(database.pool, 'latest', '0 * * * *', { missed: 'latest' });
    await addScheduleTrigger(database.pool, 'skip', '0 * * * *', { missed: 'skip' });
    await addScheduleTrigger(database.pool, 'all', '0 * * * *', { missed: 'all' });
    const { calls, invoke } = recorder();
    const runner = scheduler(invoke);

    // Down from 00:00 to 05:02: five hourly slots were missed.
    clock = at(5 * 60 + 2);
    await runner.tick();
    await runner.idle();
    expect(slotsOf(calls, 'latest')).toEqual(['2026-01-01T05:00:00.000Z']);
    expect(slotsOf(calls, 'skip')).toEqual([]);
    expect(slotsOf(calls, 'all')).toEqual([1, 2, 3, 4, 5].map((hour) => at(hour * 60).toISOString()));
    const skipped = await database.pool.query(
      `SELECT s.slot, s.skip_reason FROM schedule_slots s JOIN triggers t ON t.id = s.trigger_id
       WHERE t.function_name = 'skip'`,
    );
    expect(skipped.rows).toEqual([{ slot: at(300), skip_reason: 'missed' }]);
    const invoked = await database.pool.query('SELECT last_invoked_at FROM triggers WHERE id = $1', [latestId]);
    expect(invoked.rows[0].last_invoked_at).toEqual(clock);

    // The same tick again claims nothing new.
    await runner.tick();
    await runner.idle();
    expect(calls).toHaveLength(6);

    // On time, every policy runs the slot once.
    clock = at(6 * 60 + 0.5);
    await runner.tick();
    await runner.idle();
    for (const name of ['latest', 'skip', 'all']) {
      expect(slotsOf(calls, name).filter((slot) => slot === '2026-01-01T06:00:00.000Z')).toHaveLength(1);
    }
    expect(calls).toHaveLength(9);
  });

  test('overlap policy skips or allows a slot', async () => {
    await addScheduleTrigger(database.pool, 'no-overlap', '* * * * *', { overlap: 'skip' });
    await addScheduleTrigger(database.pool, 'overlap', '* * * * *', { overlap: 'allow' });
    const calls: ScheduledRun[] = [];
    const releases: (() => void)[] = [];
    const runner = scheduler(async (run) => {
      calls.push(run);
      await new Promise<void>((resolve) => releases.push(resolve));
      return { ok: true };
    });

    clock = at(1);
    await runner.tick();
    clock = at(2);
    await runner.tick();
    expect(slotsOf(calls, 'no-overlap')).toEqual([at(1).toISOString()]);
    expect(slotsOf(calls, 'overlap')).toEqual([at(1).toISOString(), at(2).toISOString()]);
    const skipped = await database.pool.query(`SELECT slot, skip_reason FROM schedule_slots WHERE status = 'skipped'`);
    expect(skipped.rows).toEqual([{ slot: at(2), skip_reason: 'overlap' }]);

    for (const release of releases.splice(0)) release();
    await runner.idle();
    clock = at(3);
    await runner.tick();
    expect(slotsOf(calls, 'no-overlap')).toEqual([at(1).toISOString(), at(3).toISOString()]);
    for (const release of releases.splice(0)) release();
  });

  test('failed run and invalid cron are recorded or skipped', async () => {
    await database.pool.query(`INSERT INTO functions (name) VALUES ('broken')`);
    await database.pool.query(
      `INSERT INTO triggers (function_name, kind, cron, time_zone, created_at)
       VALUES ('broken', 'schedule', '61 * * * *', 'UTC', $1)`,
      [start],
    );
    await addScheduleTrigger(database.pool, 'failing', '* * * * *');
    const runner = scheduler(async () => {
      throw new Error('boom');
    });
    clock = at(1);
    await runner.tick();
    await runner.idle();
    const { rows } = await database.pool.query('SELECT status, error FROM schedule_slots');
    expect(rows).toEqual([{ status: 'failed', error: 'boom' }]);
  });

  test('start ticks with the real clock', async () => {
    await addScheduleTrigger(database.pool, 'soon', '* * * * *');
    // Backdate the trigger so that the current minute's slot is due right away.
    await database.pool.query(`UPDATE triggers SET created_at = now() - interval '2 minutes'`);
    const calls: ScheduledRun[] = [];
    const runner = createScheduler({
      pool: database.pool,
      tenant: 't',
      tickMs: 50,
      invoke: async (run) => {
        calls.push(run);
        return { ok: true };
      },
    });
    runner.start();
    const deadline = Date.now() + 10_000;
    while (calls.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await runner.stop();
    // One slot, or two if the test crossed a minute boundary.
    expect(calls.length).toBeGreaterThanOrEqual(1);
    expect(calls.length).toBeLessThanOrEqual(2);
  });
});
