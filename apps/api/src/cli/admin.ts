/**
 * Operator CLI; does what the admin API does, straight against Postgres.
 *   npm run admin -- users create --id alice --tier pro
 *   npm run admin -- users update --id alice --tier basic
 *   npm run admin -- keys create --user alice [--name laptop]
 *   npm run admin -- keys revoke KEY_ID
 */
import { parseArgs } from "node:util";
import { CommonEnvSchema, loadEnvOrExit, TIERS, type Tier } from "@simbatch/config";
import { createApiKey, revokeApiKey, updateUserTier, upsertUser } from "@simbatch/core";
import { wireAdminCli } from "@simbatch/runtime";
import { AppError } from "@simbatch/errors";

const USAGE = `usage:
  admin users create --id USER_ID [--tier free|basic|pro|enterprise]
  admin users update --id USER_ID --tier TIER
  admin keys create --user USER_ID [--name NAME]
  admin keys revoke KEY_ID`;

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

function tierOf(value: string): Tier {
  const t = value.toLowerCase();
  if (!(TIERS as readonly string[]).includes(t)) fail(`--tier must be one of ${TIERS.join(", ")}`);
  return t as Tier;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      options: { id: { type: "string" }, tier: { type: "string" }, user: { type: "string" }, name: { type: "string" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
    });
  } catch (err) {
    // An unknown option or a missing value: what was wrong, then how it is used (no stack trace).
    fail(`${(err as Error).message.split(". ")[0]}\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const [noun, verb, arg] = positionals;
  const env = loadEnvOrExit(CommonEnvSchema, "admin");
  const db = wireAdminCli(env);
  try {
    let out: unknown;
    if (noun === "users" && verb === "create")
      out = (await upsertUser(db, values.id ?? fail("--id is required"), values.tier === undefined ? null : tierOf(values.tier))).user;
    else if (noun === "users" && verb === "update")
      out = await updateUserTier(db, values.id ?? fail("--id is required"), tierOf(values.tier ?? fail("--tier is required")));
    else if (noun === "keys" && verb === "create") out = await createApiKey(db, values.user ?? fail("--user is required"), values.name ?? null);
    else if (noun === "keys" && verb === "revoke") {
      await revokeApiKey(db, arg ?? fail("KEY_ID is required"));
      out = { key_id: arg, revoked: true };
    } else fail(USAGE);
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } catch (err) {
    if (err instanceof AppError) fail(`${err.code}: ${err.message}`);
    throw err;
  } finally {
    await db.$disconnect();
  }
}

void main();
