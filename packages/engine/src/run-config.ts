import { z } from "zod";

/** Keys every template understands; unknown keys are ignored (kept as given). */
export const BaseRunConfigSchema = z.looseObject({
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullish(),
});

/** `test/scripted`: the whole run is driven by these keys (see spec/templates.md). */
export const ScriptedRunConfigSchema = z
  .looseObject({
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullish(),
    steps: z.number().int().min(1).max(10_000).default(1),
    step_ms: z.number().int().min(0).max(600_000).default(0),
    cost_usd_per_step: z.number().min(0).max(1_000).default(0.01),
    tokens_per_step: z.number().int().min(0).max(10_000_000).default(100),
    fail_at_step: z.number().int().min(1).nullable().default(null),
    estimate_usd: z.number().min(0).max(1_000_000).nullable().default(null),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.fail_at_step !== null && cfg.fail_at_step > cfg.steps) {
      ctx.addIssue({ code: "custom", path: ["fail_at_step"], message: "must be between 1 and steps" });
    }
  });
export type ScriptedRunConfig = z.infer<typeof ScriptedRunConfigSchema>;

export const SCRIPTED_TEMPLATE_ID = "test/scripted";

export interface ConfigIssue {
  path: string;
  message: string;
}

/** Validates the known keys of a request's `config` for the given template. */
export function validateRunConfig(templateId: string | null, config: unknown): ConfigIssue[] {
  const schema = templateId === SCRIPTED_TEMPLATE_ID ? ScriptedRunConfigSchema : BaseRunConfigSchema;
  const parsed = schema.safeParse(config ?? {});
  if (parsed.success) return [];
  return parsed.error.issues.map((issue) => ({ path: issue.path.join("."), message: issue.message }));
}

export function parseScriptedConfig(config: unknown): ScriptedRunConfig {
  return ScriptedRunConfigSchema.parse(config ?? {});
}
