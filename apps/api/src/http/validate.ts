import { validationError, type FieldIssue } from "@simbatch/errors";
import type { z } from "zod";

export const toIssues = (error: z.ZodError, prefix = ""): FieldIssue[] =>
  error.issues.map((i) => ({ path: [prefix, ...i.path.map(String)].filter(Boolean).join("."), message: i.message }));

/** Parses or throws a 422 whose detail lists every problem with its dotted path. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, prefix = ""): z.infer<S> {
  const res = schema.safeParse(value);
  if (!res.success) throw validationError(toIssues(res.error, prefix));
  return res.data;
}
