/**
 * Returns whether `name` is an IANA time zone name that this runtime supports, such as
 * `Europe/Berlin`, `UTC` or `Etc/GMT+5`. Intl also accepts UTC offsets such as `+05:00`; they
 * are rejected here because an offset has no DST rules, so schedules in it would drift from
 * the local time its users mean.
 */
export function isIanaTimeZone(name: string): boolean {
  if (name === '' || name.length > 64 || /^[+-]/.test(name)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
