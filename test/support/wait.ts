/**
 * Polls `check` until it returns true, and throws naming `condition` when `timeoutMs` passes
 * first. Tests wait on a condition this way instead of sleeping for a fixed time.
 */
export async function waitFor(
  condition: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  intervalMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${condition}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
