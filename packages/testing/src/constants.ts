import { randomBytes } from "node:crypto";

export const PG_ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** Test databases carry their creation time, so a later run can drop only stale ones. */
const stamp = () => `${Math.floor(Date.now() / 1000)}_${randomBytes(3).toString("hex")}`;
export const newTemplateName = (): string => `simbatch_tpl_${stamp()}`;
export const newTestDbName = (): string => `simbatch_t_${stamp()}`;
/** Set by the global setup for the test workers it starts. */
export const templateDb = (): string => {
  const name = process.env.SIMBATCH_TEST_TEMPLATE_DB;
  if (!name) throw new Error("SIMBATCH_TEST_TEMPLATE_DB is unset: run tests through jest (its global setup builds the template)");
  return name;
};

export const dbUrl = (name: string): string => {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
};
