import { Code, ConnectError } from '@connectrpc/connect';

import { ErrorInfoSchema } from '#gen/google/rpc/error_details_pb.js';
import {
  fireTimesBetween,
  nextFireTimes,
  parseCron,
  validateTimeZone,
} from './cron.ts';

function iso(times: Date[]): string[] {
  return times.map((time) => time.toISOString());
}

function between(expression: string, timeZone: string, from: string, to: string): string[] {
  return iso(fireTimesBetween(parseCron(expression), timeZone, new Date(from), new Date(to)));
}

function next(expression: string, timeZone: string, after: string, count: number): string[] {
  return iso(nextFireTimes(parseCron(expression), { timeZone, after: new Date(after), count }));
}

/** Runs `action`, expects a ConnectError and returns it. */
function caught(action: () => unknown): ConnectError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    return error as ConnectError;
  }
  throw new Error('expected an error, but none was thrown');
}

describe('DST rule', () => {
  test('New York fall back fires a repeated time once', () => {
    const times = between('30 1 * * *', 'America/New_York', '2021-11-06T12:00Z', '2021-11-08T12:00Z');
    // One run on 7 November, at the first 01:30 (EDT); the next is 01:30 EST on the 8th.
    expect(times).toEqual(['2021-11-07T05:30:00.000Z', '2021-11-08T06:30:00.000Z']);
  });

  test('New York spring forward moves a skipped time to 03:00', () => {
    const times = between('30 2 * * *', 'America/New_York', '2021-03-13T12:00Z', '2021-03-15T12:00Z');
    // One run on 14 March, at 03:00 EDT; the next is 02:30 EDT on the 15th.
    expect(times).toEqual(['2021-03-14T07:00:00.000Z', '2021-03-15T06:30:00.000Z']);
  });

  test('Chicago weekly run on the spring-forward Sunday', () => {
    expect(next('0 8 * * 0', 'America/Chicago', '2026-03-08T05:45Z', 1)).toEqual([
      '2026-03-08T13:00:00.000Z',
    ]);
  });

  test('Berlin spring forward and fall back', () => {
    expect(between('30 2 * * *', 'Europe/Berlin', '2026-03-28T12:00Z', '2026-03-30T12:00Z')).toEqual([
      // 02:30 does not exist on 29 March; 03:00 CEST is 01:00Z.
      '2026-03-29T01:00:00.000Z',
      '2026-03-30T00:30:00.000Z',
    ]);
    expect(between('30 2 * * *', 'Europe/Berlin', '2026-10-24T12:00Z', '2026-10-25T12:00Z')).toEqual([
      // First 02:30 of 25 October is still CEST (+02:00).
      '2026-10-25T00:30:00.000Z',
    ]);
  });

  test('Lord Howe 30-minute shift', () => {
    // Clocks go from 02:00 (+10:30) to 02:30 (+11:00) on 4 October 2026.
    expect(next('15 2 * * *', 'Australia/Lord_Howe', '2026-10-03T00:00Z', 2)).toEqual([
      '2026-10-03T15:30:00.000Z',
      '2026-10-04T15:15:00.000Z',
    ]);
    // Clocks go from 02:00 (+11:00) back to 01:30 (+10:30) on 5 April 2026.
    expect(between('45 1 * * *', 'Australia/Lord_Howe', '2026-04-04T00:00Z', '2026-04-05T00:00Z')).toEqual([
      '2026-04-04T14:45:00.000Z',
    ]);
  });

  test('Kolkata has a fixed half-hour offset', () => {
    expect(next('0 9 * * MON-FRI', 'Asia/Kolkata', '2026-01-02T00:00Z', 3)).toEqual([
      '2026-01-02T03:30:00.000Z',
      '2026-01-05T03:30:00.000Z',
      '2026-01-06T03:30:00.000Z',
    ]);
  });

  test('every minute across a spring-forward gap', () => {
    expect(next('* * * * *', 'America/New_York', '2021-03-14T06:58Z', 4)).toEqual([
      '2021-03-14T06:59:00.000Z',
      // 02:00 to 02:59 do not exist and all map to 03:00 EDT, which fires once.
      '2021-03-14T07:00:00.000Z',
      '2021-03-14T07:01:00.000Z',
      '2021-03-14T07:02:00.000Z',
    ]);
  });

  test('every minute across a fall-back repeat', () => {
    // 01:00 to 01:59 fire during their first occurrence (EDT) only, so the next run after
    // 01:59 EDT is 02:00 EST, an hour later in real time.
    expect(next('* * * * *', 'America/New_York', '2021-11-07T05:58Z', 2)).toEqual([
      '2021-11-07T05:59:00.000Z',
      '2021-11-07T07:00:00.000Z',
    ]);
  });

  test('spring-forward gap at midnight', () => {
    // Havana skipped from 00:00 to 01:00 on 8 March 2026 (UTC-5 to UTC-4).
    expect(next('0 0 * * *', 'America/Havana', '2026-03-07T12:00Z', 2)).toEqual([
      '2026-03-08T05:00:00.000Z',
      '2026-03-09T04:00:00.000Z',
    ]);
  });

  test('times within a gap that coincide with a later time fire once', () => {
    expect(between('0,30 2,3 * * *', 'America/New_York', '2021-03-14T05:00Z', '2021-03-14T08:00Z')).toEqual([
      '2021-03-14T07:00:00.000Z',
      '2021-03-14T07:30:00.000Z',
    ]);
  });
});

describe('parseCron', () => {
  test('leap day fires only in leap years', () => {
    expect(next('0 0 29 2 *', 'UTC', '2021-01-01T00:00Z', 3)).toEqual([
      '2024-02-29T00:00:00.000Z',
      '2028-02-29T00:00:00.000Z',
      '2032-02-29T00:00:00.000Z',
    ]);
    // 2100 is not a leap year, so the search spans eight years.
    expect(next('0 0 29 2 *', 'UTC', '2097-01-01T00:00Z', 1)).toEqual(['2104-02-29T00:00:00.000Z']);
  });

  test('lists, ranges, steps and names', () => {
    const schedule = parseCron('0,15-17,*/20 1-5/2 1 jan,JUL mon-wed');
    expect(schedule.minutes).toEqual([0, 15, 16, 17, 20, 40]);
    expect(schedule.hours).toEqual([1, 3, 5]);
    expect(schedule.months.flatMap((match, month) => (match ? [month] : []))).toEqual([1, 7]);
    expect(schedule.daysOfWeek).toEqual([false, true, true, true, false, false, false]);
  });

  test('value with step runs to the field maximum', () => {
    expect(parseCron('50/3 * * * *').minutes).toEqual([50, 53, 56, 59]);
  });

  test('7 is Sunday', () => {
    expect(parseCron('0 0 * * 7').daysOfWeek).toEqual(parseCron('0 0 * * 0').daysOfWeek);
    expect(parseCron('0 0 * * 5-7').daysOfWeek).toEqual([true, false, false, false, false, true, true]);
  });

  test('restricted day fields match either', () => {
    // February 2026: Fridays are 6, 13, 20 and 27; the 13th matches both fields.
    expect(next('0 0 13 * FRI', 'UTC', '2026-02-01T00:00Z', 4)).toEqual([
      '2026-02-06T00:00:00.000Z',
      '2026-02-13T00:00:00.000Z',
      '2026-02-20T00:00:00.000Z',
      '2026-02-27T00:00:00.000Z',
    ]);
  });

  test('starred day-of-month field must also match', () => {
    // `*/2` starts with `*`, so it counts as unrestricted and both fields must match.
    expect(next('0 0 */2 * FRI', 'UTC', '2026-02-01T00:00Z', 2)).toEqual([
      '2026-02-13T00:00:00.000Z',
      '2026-02-27T00:00:00.000Z',
    ]);
  });

  test.each([
    ['@hourly', '0 * * * *'],
    ['@daily', '0 0 * * *'],
    ['@midnight', '0 0 * * *'],
    ['@weekly', '0 0 * * 0'],
    ['@monthly', '0 0 1 * *'],
    ['@yearly', '0 0 1 1 *'],
    ['@annually', '0 0 1 1 *'],
  ])('macro %s equals %s', (macro, expression) => {
    const after = '2026-05-17T10:20Z';
    expect(next(macro, 'UTC', after, 3)).toEqual(next(expression, 'UTC', after, 3));
  });

  test.each([
    ['0 0 * * * *', /expected 5 fields.*got 6/, undefined],
    ['0 0 * *', /expected 5 fields.*got 4/, undefined],
    ['', /empty/, undefined],
    ['61 * * * *', /minute field: 61 is out of range 0-59/, 'minute'],
    ['0 24 * * *', /hour field: 24 is out of range 0-23/, 'hour'],
    ['0 0 0 * *', /day-of-month field: 0 is out of range 1-31/, 'day-of-month'],
    ['0 0 * 13 *', /month field: 13 is out of range 1-12/, 'month'],
    ['0 0 * * 8', /day-of-week field: 8 is out of range 0-7/, 'day-of-week'],
    ['*/0 * * * *', /minute field: step "0" must be a positive integer/, 'minute'],
    ['0 0 * * FUNDAY', /day-of-week field: "FUNDAY" is not a number or a name such as SUN/, 'day-of-week'],
    ['0 0 * FOO *', /month field: "FOO" is not a number or a name such as JAN/, 'month'],
    ['5-1 * * * *', /minute field: range "5-1" runs backwards/, 'minute'],
    ['1,,2 * * * *', /minute field: empty list item/, 'minute'],
    ['1/2/3 * * * *', /more than one "\/"/, 'minute'],
    ['@every_5m', /unknown macro/, undefined],
    ['0 0 30 2 *', /never fires/, 'day-of-month'],
    ['0 0 31 4,6,9,11 *', /never fires/, 'day-of-month'],
  ])('rejects %j', (expression, message, cronField) => {
    const error = caught(() => parseCron(expression));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(message);
    const [info] = error.findDetails(ErrorInfoSchema);
    expect(info.reason).toBe('INVALID_CRON');
    expect(info.metadata.cronField).toBe(cronField);
  });

  test('30 February with a day-of-week still fires on that weekday', () => {
    expect(next('0 0 30 2 MON', 'UTC', '2026-02-01T00:00Z', 1)).toEqual(['2026-02-02T00:00:00.000Z']);
  });
});

describe('time zones and bounds', () => {
  test('invalid time zone is INVALID_ARGUMENT', () => {
    const error = caught(() => nextFireTimes(parseCron('* * * * *'), {
      timeZone: 'Mars/Olympus_Mons',
      after: new Date('2026-01-01T00:00Z'),
      count: 1,
    }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/invalid time zone "Mars\/Olympus_Mons"/);
    expect(error.findDetails(ErrorInfoSchema)[0].reason).toBe('INVALID_ARGUMENT');
  });

  test('fireTimesBetween checks the zone on an empty window', () => {
    const schedule = parseCron('* * * * *');
    const at = new Date('2026-01-01T00:00Z');
    expect(() => fireTimesBetween(schedule, 'Nowhere/City', at, at)).toThrow(/invalid time zone/);
  });

  test('validateTimeZone returns the canonical name', () => {
    expect(validateTimeZone('europe/berlin')).toBe('Europe/Berlin');
  });

  test('results are strictly after the start', () => {
    expect(next('0 * * * *', 'UTC', '2026-01-01T10:00Z', 1)).toEqual(['2026-01-01T11:00:00.000Z']);
    expect(between('0 * * * *', 'UTC', '2026-01-01T10:00Z', '2026-01-01T11:00Z')).toEqual([
      '2026-01-01T11:00:00.000Z',
    ]);
  });

  test('count out of range is rejected', () => {
    const schedule = parseCron('* * * * *');
    const after = new Date('2026-01-01T00:00Z');
    expect(caught(() => nextFireTimes(schedule, { timeZone: 'UTC', after, count: 0 })).code).toBe(
      Code.InvalidArgument,
    );
    expect(caught(() => nextFireTimes(schedule, { timeZone: 'UTC', after, count: 10_001 })).code).toBe(
      Code.InvalidArgument,
    );
  });

  test('fireTimesBetween stops at the limit', () => {
    const schedule = parseCron('* * * * *');
    const times = fireTimesBetween(schedule, 'UTC', new Date('2026-01-01T00:00Z'), new Date('2026-02-01T00:00Z'), 5);
    expect(iso(times)).toEqual([
      '2026-01-01T00:01:00.000Z',
      '2026-01-01T00:02:00.000Z',
      '2026-01-01T00:03:00.000Z',
      '2026-01-01T00:04:00.000Z',
      '2026-01-01T00:05:00.000Z',
    ]);
  });

  test('a year of hourly Berlin times has one per local hour', () => {
    const times = between('0 * * * *', 'Europe/Berlin', '2025-12-31T23:00Z', '2026-12-31T23:00Z');
    // 8760 hours in 2026, minus the skipped 02:00 in March; the repeated 02:00 in
    // October fires once.
    expect(times).toHaveLength(8759);
  });
});
