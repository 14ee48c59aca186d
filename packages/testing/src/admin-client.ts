import { Client } from "pg";
import { PG_ADMIN_URL } from "./constants.ts";

/** Runs `fn` on a connection to the `postgres` database (create/drop databases), always closing it. */
export async function withAdminClient<T>(fn: (admin: Client) => Promise<T>): Promise<T> {
  const admin = new Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}
