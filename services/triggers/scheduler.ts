/**
 * The schedule runner of one tenant: on every tick it computes the due slots of each
 * enabled schedule trigger with `cron.ts` and claims the (trigger, slot) pairs with
 * `INSERT ... ON CONFLICT DO NOTHING` into `schedule_slots`. The primary key makes the claim
 * unique, so replicas and restarts never run a slot twice.
 *
 * One transaction per tick locks every enabled schedule trigger that no other process holds,
 * reads their watermarks and claims all their due slots with one insert.
 *
 * Slots are due when `watermark < slot <= now`. The watermark is the latest slot recorded
 * for the trigger, or the trigger's `created_at` before its first slot.
 *
 * Missed-slot policy, for due slots older than the current tick:
 * - `latest` (default): runs only the latest due slot, once.
 * - `skip`: runs the latest due slot only when it is at most `graceMs` old, otherwise
 *   records it as skipped.
 * - `all`: runs every due slot in order, up to `maxCatchUp` per tick, one after another.
 *
 * Overlap policy: with `skip` (default), a slot that falls due while a run of the same
 * trigger is still in progress is recorded as skipped. With `allow` it runs anyway. A run whose
 * slot was claimed more than `leaseMs` ago no longer counts as in progress, so a crashed
 * process does not block its trigger forever.
 *
 * NOTE: a schedule slot runs once and is not retried; `max_attempts` applies to event
 * deliveries only.
 */
import { pino, type Logger } from 'pino';

import { fireTimesBetween, nextFireTimes, parseCron, MAX_FIRE_TIMES, type CronSchedule } from './cron.ts';
import type { Database } from '../db/pool-handle.ts';
import type { InvokeResult } from './dispatcher.ts';

/** One scheduled run of a trigger's function. */
export interface ScheduledRun {
  tenant: string;
  triggerId: string;
  functionName: string;
  /** The slot's fire time. */
  slot: Date;
  cron: string;
  timeZone: string;
}

/** Options of {@link createScheduler}. */
export interface SchedulerOptions {
  /** Pool on the tenant's database. */
  pool: Database;
  /** Tenant id, for logs and for {@link ScheduledRun.tenant}. */
  tenant: string;
  /** Runs the function of a slot; a thrown error counts as a failed run. */
  invoke: (run: ScheduledRun) => Promise<InvokeResult>;
  logger?: Logger;
  /** Clock; default `() => new Date()`. */
  now?: () => Date;
  /** Maximum time between ticks, in milliseconds; default 1000. */
  tickMs?: number;
  /** Maximum age of a slot that the `skip` policy still runs, in milliseconds; default 60000. */
  graceMs?: number;
  /** Time after which a running slot no longer blocks the next one, in milliseconds; default 300000. */
  leaseMs?: number;
  /** Maximum slots the `all` policy claims per trigger and tick; default 100. */
  maxCatchUp?: number;
}

/** A running scheduler. */
export interface Scheduler {
  /** Starts ticking. */
  start(): void;
  /** Stops ticking and waits for the tick and the runs in progress. */
  stop(): Promise<void>;
  /** Claims and starts the due slots of every trigger once; resolves before the runs finish. */
  tick(): Promise<void>;
  /** Waits for the runs started so far; for tests and shutdown. */
  idle(): Promise<void>;
}

interface ScheduleTrigger {
  id: string;
  function_name: string;
  cron: string;
  time_zone: string;
  missed_slot_policy: 'latest' | 'skip' | 'all';
  overlap_policy: 'skip' | 'allow';
  created_at: Date;
}

/** The slots of one trigger that a tick claimed to run. */
interface SlotClaim {
  trigger: ScheduleTrigger;
  slots: Date[];
}

interface SlotDecision {
  slot: Date;
  run: boolean;
  skipReason?: 'missed' | 'overlap';
}

// Within this window a frequent schedule has its latest slot, so the full search from the
// watermark only runs for rare schedules, which have few slots.
const RECENT_WINDOW_MS = 86_400_000;

/** Returns the latest fire time in `(from, to]`, or undefined when there is none. */
function latestFireTime(schedule: CronSchedule, timeZone: string, from: Date, to: Date): Date | undefined {
  const recentFrom = new Date(Math.max(from.getTime(), to.getTime() - RECENT_WINDOW_MS));
  let times = fireTimesBetween(schedule, timeZone, recentFrom, to);
  let start = from;
  while (times.length === 0 && start.getTime() < recentFrom.getTime()) {
    const batch = fireTimesBetween(schedule, timeZone, start, recentFrom);
    if (batch.length < MAX_FIRE_TIMES) {
      times = batch;
      break;
    }
    start = batch[batch.length - 1];
  }
  return times[times.length - 1];
}

/** Creates the scheduler of one tenant. Options are checked here. */
export function createScheduler(options: SchedulerOptions): Scheduler {
  const { pool, tenant, invoke } = options;
  const logger = (options.logger ?? pino({ level: 'silent' })).child({ tenant });
  const now = options.now ?? (() => new Date());
  const tickMs = options.tickMs ?? 1000;
  const graceMs = options.graceMs ?? 60_000;
  const leaseMs = options.leaseMs ?? 300_000;
  const maxCatchUp = options.maxCatchUp ?? 100;
  for (const [name, value] of Object.entries({ tickMs, graceMs, leaseMs, maxCatchUp })) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new Error(`scheduler option ${name} must be a positive number, got ${value}`);
    }
  }

  const schedules = new Map<string, CronSchedule>();
  // Results of upcoming() in this tick and the tick before; older entries are dropped.
  let upcomingTimes = new Map<string, Date[]>();
  let upcomingBefore = new Map<string, Date[]>();
  const reportedInvalid = new Set<string>();
  const inFlight = new Set<Promise<void>>();
  let running = false;
  let ticking: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  function scheduleOf(trigger: ScheduleTrigger): CronSchedule | undefined {
    const key = `${trigger.cron}\u0000${trigger.time_zone}`;
    const cached = schedules.get(key);
    if (cached) return cached;
    try {
      const schedule = parseCron(trigger.cron);
      nextFireTimes(schedule, { timeZone: trigger.time_zone, after: new Date(0), count: 1 });
      schedules.set(key, schedule);
      return schedule;
    } catch (error) {
      // Logged once per trigger, because every tick would repeat it.
      if (!reportedInvalid.has(trigger.id)) {
        reportedInvalid.add(trigger.id);
        logger.error({ err: error, trigger: trigger.id, cron: trigger.cron, timeZone: trigger.time_zone },
          'schedule trigger has an invalid cron expression or time zone; skipping it');
      }
      return undefined;
    }
  }

  /**
   * Returns the first two fire times after `watermark`. A tick between two slots computes
   * them for the slot to come, so the tick at the slot finds its due slot and the next fire
   * time here instead of computing cron times while the slot waits.
   */
  function upcoming(trigger: ScheduleTrigger, schedule: CronSchedule, watermark: Date): Date[] {
    const key = `${trigger.cron}\u0000${trigger.time_zone}\u0000${watermark.getTime()}`;
    let times = upcomingTimes.get(key) ?? upcomingBefore.get(key);
    if (!times) times = nextFireTimes(schedule, { timeZone: trigger.time_zone, after: watermark, count: 2 });
    upcomingTimes.set(key, times);
    return times;
  }

  function decide(
    trigger: ScheduleTrigger,
    schedule: CronSchedule,
    watermark: Date,
    at: Date,
    busy: boolean,
    knownDue?: Date[],
  ): SlotDecision[] {
    const overlapSkip = busy && trigger.overlap_policy === 'skip';
    const orSkip = (slot: Date): SlotDecision =>
      overlapSkip ? { slot, run: false, skipReason: 'overlap' } : { slot, run: true };

    switch (trigger.missed_slot_policy) {
      case 'all':
        return (knownDue?.slice(0, maxCatchUp) ?? fireTimesBetween(schedule, trigger.time_zone, watermark, at, maxCatchUp))
          .map(orSkip);
      case 'latest': {
        const slot = knownDue ? knownDue.at(-1) : latestFireTime(schedule, trigger.time_zone, watermark, at);
        return slot ? [orSkip(slot)] : [];
      }
      case 'skip': {
        const slot = knownDue ? knownDue.at(-1) : latestFireTime(schedule, trigger.time_zone, watermark, at);
        if (!slot) return [];
        if (at.getTime() - slot.getTime() > graceMs) return [{ slot, run: false, skipReason: 'missed' }];
        return [orSkip(slot)];
      }
    }
  }

  /**
   * Claims the due slots of every enabled schedule trigger in one transaction and returns the
   * triggers with the slots to run. A trigger locked by another process is skipped, because
   * that process is claiming its slots right now. Also returns the next fire time of any trigger.
   */
  async function claimSlots(at: Date): Promise<{ claims: SlotClaim[]; nextDue?: Date }> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<ScheduleTrigger & { watermark: Date | null; busy: boolean }>(
        `SELECT t.id, t.function_name, t.cron, t.time_zone, t.missed_slot_policy, t.overlap_policy,
                t.created_at,
                (SELECT max(s.slot) FROM schedule_slots s WHERE s.trigger_id = t.id) AS watermark,
                EXISTS (SELECT 1 FROM schedule_slots s
                        WHERE s.trigger_id = t.id AND s.status = 'running' AND s.claimed_at > $1) AS busy
         FROM triggers t
         WHERE t.kind = 'schedule' AND t.enabled
         ORDER BY t.id
         FOR UPDATE OF t SKIP LOCKED`,
        [new Date(at.getTime() - leaseMs)],
      );

      let nextDue: Date | undefined;
      const decided: { trigger: ScheduleTrigger; decisions: SlotDecision[] }[] = [];
      for (const trigger of rows) {
        const schedule = scheduleOf(trigger);
        if (!schedule) continue;
        const watermark = trigger.watermark ?? trigger.created_at;
        const [first, second] = upcoming(trigger, schedule, watermark);
        let next: Date | undefined;
        if (!first) continue;
        if (first > at) {
          next = first;
        } else if (!second || second > at) {
          // The usual case: exactly one slot is due, so no cron search is needed.
          decided.push({ trigger, decisions: decide(trigger, schedule, watermark, at, trigger.busy, [first]) });
          next = second;
        } else {
          const decisions = decide(trigger, schedule, watermark, at, trigger.busy);
          if (decisions.length > 0) decided.push({ trigger, decisions });
          [next] = nextFireTimes(schedule, { timeZone: trigger.time_zone, after: at, count: 1 });
        }
        if (next && (!nextDue || next < nextDue)) nextDue = next;
      }
      if (decided.length === 0) {
        await client.query('COMMIT');
        return { claims: [], nextDue };
      }

      const pairs = decided.flatMap(({ trigger, decisions }) =>
        decisions.map((decision) => ({ triggerId: trigger.id, ...decision })));
      const claimed = await client.query<{ trigger_id: string; slot: Date; status: string }>(
        `INSERT INTO schedule_slots (trigger_id, slot, claimed_at, status, skip_reason, finished_at)
         SELECT trigger_id, slot, $1, CASE WHEN run THEN 'running' ELSE 'skipped' END, skip_reason,
                CASE WHEN run THEN NULL ELSE $1::timestamptz END
         FROM unnest($2::uuid[], $3::timestamptz[], $4::boolean[], $5::text[])
           AS d (trigger_id, slot, run, skip_reason)
         ON CONFLICT (trigger_id, slot) DO NOTHING
         RETURNING trigger_id, slot, status`,
        [
          at,
          pairs.map((pair) => pair.triggerId),
          pairs.map((pair) => pair.slot),
          pairs.map((pair) => pair.run),
          pairs.map((pair) => pair.skipReason ?? null),
        ],
      );
      await client.query('COMMIT');

      const claims: SlotClaim[] = [];
      for (const { trigger, decisions } of decided) {
        const slots = claimed.rows
          .filter((row) => row.trigger_id === trigger.id && row.status === 'running')
          .map((row) => row.slot)
          .sort((a, b) => a.getTime() - b.getTime());
        if (slots.length > 0) claims.push({ trigger, slots });
        for (const decision of decisions) {
          if (!decision.run) {
            logger.info({ trigger: trigger.id, function: trigger.function_name, slot: decision.slot, reason: decision.skipReason },
              'schedule slot skipped');
          }
        }
      }
      return { claims, nextDue };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async function runSlot(trigger: ScheduleTrigger, slot: Date): Promise<void> {
    let result: InvokeResult;
    try {
      result = await invoke({
        tenant,
        triggerId: trigger.id,
        functionName: trigger.function_name,
        slot,
        cron: trigger.cron,
        timeZone: trigger.time_zone,
      });
    } catch (error) {
      result = { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    if (!result.ok) {
      logger.warn({ trigger: trigger.id, function: trigger.function_name, slot, error: result.error },
        'scheduled run failed');
    }
    try {
      await pool.query(
        `UPDATE schedule_slots SET status = $3, finished_at = $4, error = $5, execution_id = $6
         WHERE trigger_id = $1 AND slot = $2`,
        [trigger.id, slot, result.ok ? 'succeeded' : 'failed', now(), result.ok ? null : (result.error ?? 'failed'),
          result.executionId ?? null],
      );
    } catch (error) {
      logger.error({ err: error, trigger: trigger.id, slot }, 'failed to record a scheduled run');
    }
  }

  /** Runs the claimed slots of one trigger one after another, in slot order. */
  function startRuns(trigger: ScheduleTrigger, slots: Date[]): void {
    const task = (async () => {
      for (const slot of slots) await runSlot(trigger, slot);
    })().finally(() => inFlight.delete(task));
    inFlight.add(task);
  }

  /**
   * Sets `last_invoked_at` of triggers whose runs have started. Once-only claiming does not
   * depend on it, so it is written after the runs start, and `idle` waits for it.
   */
  function touchTriggers(triggerIds: string[], at: Date): void {
    const task = pool
      .query('UPDATE triggers SET last_invoked_at = $2 WHERE id = ANY($1::uuid[])', [triggerIds, at])
      .then(
        () => undefined,
        (error: unknown) => logger.warn({ err: error, triggers: triggerIds }, 'failed to update last_invoked_at of schedule triggers'),
      )
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
  }

  /** Runs one tick and returns the next fire time of any trigger. */
  async function tickOnce(): Promise<Date | undefined> {
    const at = now();
    upcomingBefore = upcomingTimes;
    upcomingTimes = new Map();
    const { claims, nextDue } = await claimSlots(at);
    for (const { trigger, slots } of claims) startRuns(trigger, slots);
    if (claims.length > 0) touchTriggers(claims.map(({ trigger }) => trigger.id).sort(), at);
    return nextDue;
  }

  function tick(): Promise<void> {
    if (ticking) return ticking;
    ticking = (async () => {
      let nextDue: Date | undefined;
      try {
        nextDue = await tickOnce();
      } catch (error) {
        logger.error({ err: error }, 'scheduler tick failed; retrying at the next tick');
      }
      if (!running) return;
      // Wake at the next slot when it comes before the regular tick.
      const untilDue = nextDue ? nextDue.getTime() - now().getTime() : tickMs;
      timer = setTimeout(() => void tick(), Math.max(0, Math.min(tickMs, untilDue)));
    })().finally(() => {
      ticking = undefined;
    });
    return ticking;
  }

  return {
    start() {
      if (running) return;
      running = true;
      logger.info({ tickMs, graceMs, leaseMs }, 'scheduler started');
      void tick();
    },
    async stop() {
      if (!running) return;
      running = false;
      clearTimeout(timer);
      await ticking;
      clearTimeout(timer);
      await Promise.all(inFlight);
      logger.info('scheduler stopped');
    },
    tick,
    async idle() {
      await Promise.all(inFlight);
    },
  };
}
