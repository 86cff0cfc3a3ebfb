/**
 * Cron expressions and their fire times in an IANA time zone. The cron preview and the
 * scheduler both call this module, so a preview shows exactly the slots that will run.
 *
 * Syntax: five fields, `minute hour day-of-month month day-of-week`. Each field takes `*`,
 * a number, a range `a-b`, a step `*\/n`, `a-b/n` or `a/n` (from `a` to the field's maximum),
 * and comma-separated lists of these. Months take `JAN`-`DEC` and days of week `SUN`-`SAT`
 * in any letter case; day of week `0` and `7` both mean Sunday. The macros `@yearly`
 * (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and `@hourly` stand for
 * `0 0 1 1 *`, `0 0 1 * *`, `0 0 * * 0`, `0 0 * * *` and `0 * * * *`.
 *
 * Day fields follow Vixie cron. A field is restricted when it does not start with `*`.
 * When both day-of-month and day-of-week are restricted, a day matches if either field
 * matches. Otherwise a day must match both.
 *
 * DST rule: fire times are matched on the zone's wall-clock time.
 * - A wall time that occurs twice (clocks fall back) fires once, at its first occurrence.
 * - A wall time that does not exist (clocks spring forward) fires at the first valid
 *   minute after the gap: `30 2 * * *` in America/New_York fires at 03:00 local on the
 *   spring-forward day.
 * - Several wall times that map to the same instant fire once.
 */
import { domainError } from '../core/errors.ts';
import { isIanaTimeZone } from '../core/time-zone.ts';

/** A parsed cron expression; build one with {@link parseCron}. */
export interface CronSchedule {
  /** The expression as given, trimmed. */
  readonly expression: string;
  /** Matching minutes, ascending, 0-59. */
  readonly minutes: readonly number[];
  /** Matching hours, ascending, 0-23. */
  readonly hours: readonly number[];
  /** `daysOfMonth[d]` is true when day `d` (1-31) matches; index 0 is unused. */
  readonly daysOfMonth: readonly boolean[];
  /** `months[m]` is true when month `m` (1-12) matches; index 0 is unused. */
  readonly months: readonly boolean[];
  /** `daysOfWeek[d]` is true when weekday `d` matches, 0 = Sunday to 6 = Saturday. */
  readonly daysOfWeek: readonly boolean[];
  /** Whether the day-of-month field restricts days (does not start with `*`). */
  readonly dayOfMonthRestricted: boolean;
  /** Whether the day-of-week field restricts days (does not start with `*`). */
  readonly dayOfWeekRestricted: boolean;
}

/** Options of {@link nextFireTimes}. */
export interface NextFireTimesOptions {
  /** IANA time zone name, such as `Europe/Berlin`. */
  timeZone: string;
  /** Fire times are strictly later than this instant. */
  after: Date;
  /** How many fire times to return, 1 to {@link MAX_FIRE_TIMES}. */
  count: number;
}

/** Upper bound on the number of fire times one call computes. */
export const MAX_FIRE_TIMES = 10_000;

/**
 * How far the search runs past the last fire time before it gives up, in years. Every
 * expression that passes {@link parseCron} fires at least once in any 8 consecutive years
 * (29 February is the rarest day and years divisible by 100 but not by 400 skip it), so
 * the bound only stops a search that would otherwise never end.
 */
const SEARCH_HORIZON_YEARS = 9;

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const minuteField: FieldSpec = { name: 'minute', min: 0, max: 59 };
const hourField: FieldSpec = { name: 'hour', min: 0, max: 23 };
const dayOfMonthField: FieldSpec = { name: 'day-of-month', min: 1, max: 31 };
const monthField: FieldSpec = {
  name: 'month',
  min: 1,
  max: 12,
  names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'],
};
// 7 is accepted as a second Sunday and folded onto 0 after parsing.
const dayOfWeekField: FieldSpec = {
  name: 'day-of-week',
  min: 0,
  max: 7,
  names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'],
};

const macros: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

// Maximum length of each month (February in a leap year), index 1-12.
const maxDaysInMonth = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function cronError(expression: string, message: string, cronField?: string): Error {
  const metadata: Record<string, string> = { field: 'cron' };
  if (cronField) metadata.cronField = cronField;
  return domainError('INVALID_CRON', `invalid cron expression "${expression}": ${message}`, {
    metadata,
  });
}

function parseValue(text: string, spec: FieldSpec, expression: string): number {
  if (/^\d+$/.test(text)) {
    const value = Number(text);
    if (value < spec.min || value > spec.max) {
      throw cronError(
        expression,
        `${spec.name} field: ${value} is out of range ${spec.min}-${spec.max}`,
        spec.name,
      );
    }
    return value;
  }
  const index = spec.names?.indexOf(text.toUpperCase()) ?? -1;
  if (index >= 0) return index + (spec.min === 1 ? 1 : 0);
  const hint = spec.names ? ` or a name such as ${spec.names[0]}` : '';
  throw cronError(
    expression,
    `${spec.name} field: "${text}" is not a number${hint}`,
    spec.name,
  );
}

/** Parses one field into a boolean table indexed by value. */
function parseField(text: string, spec: FieldSpec, expression: string): boolean[] {
  const matches = new Array<boolean>(spec.max + 1).fill(false);
  for (const item of text.split(',')) {
    if (item === '') {
      throw cronError(expression, `${spec.name} field: empty list item in "${text}"`, spec.name);
    }
    const [range, stepText, extra] = item.split('/');
    if (extra !== undefined) {
      throw cronError(expression, `${spec.name} field: more than one "/" in "${item}"`, spec.name);
    }

    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) {
        throw cronError(
          expression,
          `${spec.name} field: step "${stepText}" must be a positive integer`,
          spec.name,
        );
      }
      step = Number(stepText);
    }

    let start: number;
    let end: number;
    if (range === '*') {
      start = spec.min;
      end = spec.max;
    } else if (range.includes('-')) {
      const [startText, endText, rest] = range.split('-');
      if (rest !== undefined || startText === '' || endText === '') {
        throw cronError(expression, `${spec.name} field: malformed range "${range}"`, spec.name);
      }
      start = parseValue(startText, spec, expression);
      end = parseValue(endText, spec, expression);
      if (start > end) {
        throw cronError(
          expression,
          `${spec.name} field: range "${range}" runs backwards; write the smaller value first`,
          spec.name,
        );
      }
    } else {
      start = parseValue(range, spec, expression);
      // `a/n` means from a to the field's maximum in steps of n, as in Vixie cron.
      end = stepText === undefined ? start : spec.max;
    }

    for (let value = start; value <= end; value += step) matches[value] = true;
  }
  return matches;
}

function valuesOf(table: boolean[]): number[] {
  const values: number[] = [];
  table.forEach((match, value) => {
    if (match) values.push(value);
  });
  return values;
}

/**
 * Parses a five-field cron expression or a macro. Throws INVALID_CRON (an
 * INVALID_ARGUMENT) naming the field and the problem, including for expressions that can
 * never fire, such as `0 0 30 2 *`.
 */
export function parseCron(expression: string): CronSchedule {
  const trimmed = expression.trim();
  if (trimmed === '') throw cronError(expression, 'the expression is empty');

  let source = trimmed;
  if (trimmed.startsWith('@')) {
    const macro = macros[trimmed.toLowerCase()];
    if (!macro) {
      throw cronError(
        expression,
        `unknown macro "${trimmed}"; use one of ${Object.keys(macros).join(', ')}`,
      );
    }
    source = macro;
  }

  const fields = source.split(/\s+/);
  if (fields.length !== 5) {
    throw cronError(
      expression,
      `expected 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`,
    );
  }
  const [minuteText, hourText, dayOfMonthText, monthText, dayOfWeekText] = fields;

  const minutes = valuesOf(parseField(minuteText, minuteField, expression));
  const hours = valuesOf(parseField(hourText, hourField, expression));
  const daysOfMonth = parseField(dayOfMonthText, dayOfMonthField, expression);
  const months = parseField(monthText, monthField, expression);
  const weekdayTable = parseField(dayOfWeekText, dayOfWeekField, expression);
  const daysOfWeek = weekdayTable.slice(0, 7);
  if (weekdayTable[7]) daysOfWeek[0] = true;

  const schedule: CronSchedule = {
    expression: trimmed,
    minutes,
    hours,
    daysOfMonth,
    months,
    daysOfWeek,
    dayOfMonthRestricted: !dayOfMonthText.startsWith('*'),
    dayOfWeekRestricted: !dayOfWeekText.startsWith('*'),
  };
  assertCanFire(schedule);
  return schedule;
}

/**
 * Rejects a day-of-month that no selected month has, such as 30 February. Only the
 * day-of-month decides this case, because a restricted day-of-week can always match.
 */
function assertCanFire(schedule: CronSchedule): void {
  if (!schedule.dayOfMonthRestricted || schedule.dayOfWeekRestricted) return;
  for (let month = 1; month <= 12; month++) {
    if (!schedule.months[month]) continue;
    for (let day = 1; day <= maxDaysInMonth[month]; day++) {
      if (schedule.daysOfMonth[day]) return;
    }
  }
  throw cronError(
    schedule.expression,
    'day-of-month field: no selected month has any of the selected days, so it never fires',
    'day-of-month',
  );
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/**
 * Returns a formatter for `timeZone`, throwing INVALID_ARGUMENT for a name that `Intl`
 * does not know.
 */
function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter) return formatter;
  if (!isIanaTimeZone(timeZone)) throw invalidTimeZone(timeZone);
  try {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch (error) {
    throw invalidTimeZone(timeZone, error);
  }
  formatters.set(timeZone, formatter);
  return formatter;
}

function invalidTimeZone(timeZone: string, cause?: unknown) {
  return domainError('INVALID_ARGUMENT', `invalid time zone "${timeZone}": use an IANA name such as "Europe/Berlin" or "UTC"`, {
    metadata: { field: 'time_zone' },
    cause,
  });
}

/**
 * Checks that `timeZone` is an IANA name that `Intl` supports and returns its canonical
 * spelling. Throws INVALID_ARGUMENT otherwise.
 */
export function validateTimeZone(timeZone: string): string {
  return formatterFor(timeZone).resolvedOptions().timeZone;
}

/** Offset of the zone from UTC at `instant`, in milliseconds (local minus UTC). */
function zoneOffset(formatter: Intl.DateTimeFormat, instant: number): number {
  const parts: Record<string, number> = {};
  for (const part of formatter.formatToParts(instant)) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const wall = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
  // Drop the milliseconds of `instant`, which the formatted parts do not carry.
  return wall - Math.floor(instant / 1000) * 1000;
}

/**
 * Maps a wall-clock time, written as milliseconds since the epoch as if the zone were UTC,
 * to the instant the DST rule picks: the first occurrence of a repeated time, or the end
 * of the gap for a skipped time.
 *
 * NOTE: assumes the zone changes its offset at most once within a day of `wall`. A zone
 * with two changes less than two days apart would resolve times near them wrongly.
 */
function resolveWallTime(formatter: Intl.DateTimeFormat, wall: number): number {
  const offsetBefore = zoneOffset(formatter, wall - DAY_MS);
  const offsetAfter = zoneOffset(formatter, wall + DAY_MS);

  const candidates: number[] = [];
  for (const offset of new Set([offsetBefore, offsetAfter])) {
    const instant = wall - offset;
    if (zoneOffset(formatter, instant) === offset) candidates.push(instant);
  }
  if (candidates.length > 0) return Math.min(...candidates);

  // The wall time falls into a gap, so the clock jumped from offsetBefore to a larger
  // offsetAfter between these two instants. Binary search finds the first minute of the
  // new offset, which is the first valid wall time after the gap.
  let low = Math.floor((wall - offsetAfter) / MINUTE_MS);
  let high = Math.ceil((wall - offsetBefore) / MINUTE_MS);
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (zoneOffset(formatter, middle * MINUTE_MS) === offsetAfter) high = middle;
    else low = middle;
  }
  return high * MINUTE_MS;
}

function dayMatches(schedule: CronSchedule, year: number, month: number, day: number): boolean {
  const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
  const byDayOfMonth = schedule.daysOfMonth[day];
  const byDayOfWeek = schedule.daysOfWeek[weekday];
  if (schedule.dayOfMonthRestricted && schedule.dayOfWeekRestricted) {
    return byDayOfMonth || byDayOfWeek;
  }
  return byDayOfMonth && byDayOfWeek;
}

/**
 * Yields the fire times strictly after `after`, in ascending order, without end. Walks
 * the local calendar day by day, jumping over months that do not match and over hours
 * that end before `after`; throws when a search runs {@link SEARCH_HORIZON_YEARS} past the
 * last fire time.
 */
function* fireTimesAfter(schedule: CronSchedule, timeZone: string, after: Date): Generator<Date> {
  const formatter = formatterFor(timeZone);
  const afterMs = after.getTime();
  if (Number.isNaN(afterMs)) {
    throw domainError('INVALID_ARGUMENT', 'the start instant of a cron search is not a valid date');
  }

  // Start on the local date of `after`; no later fire time has an earlier wall date.
  const startWall = afterMs + zoneOffset(formatter, afterMs);
  const cursor = new Date(startWall);
  let year = cursor.getUTCFullYear();
  let month = cursor.getUTCMonth() + 1;
  let day = cursor.getUTCDate();
  let lastFire = afterMs;
  let lastFireYear = year;
  const lastMinute = schedule.minutes[schedule.minutes.length - 1];

  for (;;) {
    if (year - lastFireYear > SEARCH_HORIZON_YEARS) {
      throw cronError(
        schedule.expression,
        `no fire time within ${SEARCH_HORIZON_YEARS} years after ${new Date(lastFire).toISOString()}`,
      );
    }
    if (!schedule.months[month]) {
      day = 1;
      month += 1;
      if (month > 12) {
        month = 1;
        year += 1;
      }
      continue;
    }

    if (dayMatches(schedule, year, month, day)) {
      for (const hour of schedule.hours) {
        const hourEnd = resolveWallTime(formatter, Date.UTC(year, month - 1, day, hour, lastMinute));
        if (hourEnd <= lastFire) continue;
        for (const minute of schedule.minutes) {
          const instant = resolveWallTime(formatter, Date.UTC(year, month - 1, day, hour, minute));
          if (instant <= lastFire) continue;
          lastFire = instant;
          lastFireYear = year;
          yield new Date(instant);
        }
      }
    }

    const next = new Date(Date.UTC(year, month - 1, day + 1));
    year = next.getUTCFullYear();
    month = next.getUTCMonth() + 1;
    day = next.getUTCDate();
  }
}

/**
 * Computes the next `count` fire times of `schedule` in `timeZone`, strictly after
 * `after`, in ascending order. Throws INVALID_ARGUMENT for an unknown time zone or a
 * count outside 1 to {@link MAX_FIRE_TIMES}.
 */
export function nextFireTimes(schedule: CronSchedule, options: NextFireTimesOptions): Date[] {
  const { timeZone, after, count } = options;
  if (!Number.isInteger(count) || count < 1 || count > MAX_FIRE_TIMES) {
    throw domainError(
      'INVALID_ARGUMENT',
      `count must be an integer from 1 to ${MAX_FIRE_TIMES}, got ${count}`,
      { metadata: { field: 'count' } },
    );
  }
  const times: Date[] = [];
  for (const time of fireTimesAfter(schedule, timeZone, after)) {
    times.push(time);
    if (times.length === count) break;
  }
  return times;
}

/**
 * Computes the fire times of `schedule` in `timeZone` with `from < time <= to`, in
 * ascending order, so consecutive windows never return a slot twice. Returns at most
 * `limit` times (default and maximum {@link MAX_FIRE_TIMES}), the earliest ones.
 */
export function fireTimesBetween(
  schedule: CronSchedule,
  timeZone: string,
  from: Date,
  to: Date,
  limit: number = MAX_FIRE_TIMES,
): Date[] {
  const cap = Math.min(limit, MAX_FIRE_TIMES);
  const times: Date[] = [];
  if (to.getTime() <= from.getTime() || cap < 1) {
    formatterFor(timeZone);
    return times;
  }
  for (const time of fireTimesAfter(schedule, timeZone, from)) {
    if (time.getTime() > to.getTime()) break;
    times.push(time);
    if (times.length === cap) break;
  }
  return times;
}
