/** Billing period of an instant: its UTC calendar month, `YYYY-MM`. */
export function periodOf(at: Date): string {
  return `${at.getUTCFullYear()}-${String(at.getUTCMonth() + 1).padStart(2, "0")}`;
}

/** First instant of the period after `period`. */
export function periodEnd(period: string): Date {
  const [y, m] = period.split("-").map(Number) as [number, number];
  return new Date(Date.UTC(y, m, 1));
}

/** Whole days left before the period of `at` ends: 0 on its last day. */
export function daysRemaining(at: Date): number {
  const end = periodEnd(periodOf(at));
  const lastDay = new Date(end.getTime() - 86_400_000);
  const today = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate());
  return Math.round((lastDay.getTime() - today) / 86_400_000);
}

/** Seconds until the next period begins (at least 1). */
export function secondsToNextPeriod(at: Date): number {
  return Math.max(1, Math.ceil((periodEnd(periodOf(at)).getTime() - at.getTime()) / 1000));
}

export const PERIOD_RE = /^\d{4}-(0[1-9]|1[0-2])$/;

/** Clock injected everywhere time matters, so tests can cross a month boundary. */
export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };
