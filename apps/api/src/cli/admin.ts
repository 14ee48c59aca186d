/**
 * Operator CLI; does what the admin API does, straight against Postgres (and Redis for
 * the live API-call count of an adjustment), with the admin API's validation rules.
 *   npm run admin -- users create --id alice --tier pro
 *   npm run admin -- users update --id alice --tier basic
 *   npm run admin -- keys create --user alice [--name laptop]
 *   npm run admin -- keys revoke KEY_ID
 *   npm run admin -- usage adjust --user alice --simulations=-5 --reason "refund"
 */
import { parseArgs } from "node:util";
import { CommonEnvSchema, loadEnvOrExit } from "@simbatch/config";
import { CreateKeySchema, CreateUserSchema, systemClock, UpdateUserSchema, UsageAdjustmentSchema } from "@simbatch/contracts";
import { applyUsageAdjustment, createApiKey, revokeApiKey, updateUserTier, upsertUser } from "@simbatch/core";
import { wireAdminCli } from "@simbatch/runtime";
import { AppError } from "@simbatch/errors";
import type { z } from "zod";

const USAGE = `usage:
  admin users create --id USER_ID [--tier free|basic|pro|enterprise]
  admin users update --id USER_ID --tier TIER
  admin keys create --user USER_ID [--name NAME]
  admin keys revoke KEY_ID
  admin usage adjust --user USER_ID --reason TEXT [--period YYYY-MM]
                     [--api-calls N] [--simulations N] [--cost-usd USD] [--tokens N]
    (positive numbers add usage, negative ones credit it back, written --simulations=-5;
     the period defaults to the current one)`;

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

/** The flag that gives each field of the admin API's bodies (`--` + the field with dashes, but for these). */
const FLAG_OF: Record<string, string> = { user_id: "id" };

/** The admin API's schema over what the flags give: a wrong value fails as the API's 422 would, one line per flag. */
function validated<S extends z.ZodType>(schema: S, input: Record<string, unknown>): z.infer<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const flag = (field: string) => `--${FLAG_OF[field] ?? field.replace(/_/g, "-")}`;
  fail(parsed.error.issues.map((i) => `${i.path.length > 0 ? flag(String(i.path[0])) : "request"}: ${i.message}`).join("\n"));
}

/** A numeric flag as a number (absent stays absent); text that is not a number is refused here, by name. */
function numberFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) fail(`--${name}: must be a number`);
  return n;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      options: {
        id: { type: "string" },
        tier: { type: "string" },
        user: { type: "string" },
        name: { type: "string" },
        period: { type: "string" },
        "api-calls": { type: "string" },
        simulations: { type: "string" },
        "cost-usd": { type: "string" },
        tokens: { type: "string" },
        reason: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
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
  const wired = wireAdminCli(env);
  const { db } = wired;
  const tier = values.tier?.toLowerCase();
  try {
    let out: unknown;
    if (noun === "users" && verb === "create") {
      const body = validated(CreateUserSchema, { user_id: values.id ?? fail("--id is required"), tier });
      out = (await upsertUser(db, body.user_id, body.tier ?? null)).user;
    } else if (noun === "users" && verb === "update") {
      const id = values.id ?? fail("--id is required");
      out = await updateUserTier(db, id, validated(UpdateUserSchema, { tier: tier ?? fail("--tier is required") }).tier);
    } else if (noun === "keys" && verb === "create") {
      const body = validated(CreateKeySchema, { name: values.name });
      out = await createApiKey(db, values.user ?? fail("--user is required"), body.name ?? null);
    } else if (noun === "keys" && verb === "revoke") {
      await revokeApiKey(db, arg ?? fail("KEY_ID is required"));
      out = { key_id: arg, revoked: true };
    } else if (noun === "usage" && verb === "adjust") {
      const user = values.user ?? fail("--user is required");
      const body = validated(UsageAdjustmentSchema, {
        period: values.period,
        api_calls: numberFlag("api-calls", values["api-calls"]),
        simulations: numberFlag("simulations", values.simulations),
        cost_usd: numberFlag("cost-usd", values["cost-usd"]),
        tokens: numberFlag("tokens", values.tokens),
        reason: values.reason ?? fail("--reason is required"),
      });
      out = await applyUsageAdjustment(db, user, body, systemClock.now(), (u, p, n) => wired.adjustLiveApiCalls(u, p, n));
    } else fail(USAGE);
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } catch (err) {
    if (err instanceof AppError) fail(`${err.code}: ${err.message}`);
    throw err;
  } finally {
    await wired.close();
  }
}

void main();
