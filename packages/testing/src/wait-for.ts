/**
 * Polls `probe` until it returns a value other than undefined/false, or fails
 * with the last value seen once `timeoutMs` has passed. A deadline, not a sleep.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let last: unknown;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value as T;
    last = value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? "condition"} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 25));
  }
}
