import { ListTemplatesQuerySchema, usd } from "@simbatch/contracts";
import type { TemplateInfo } from "@simbatch/engine";
import { notFound } from "@simbatch/errors";
import type { RequestHandler } from "express";
import type { ApiDeps } from "../deps.ts";
import { parse } from "../http/validate.ts";

export const templateView = (t: TemplateInfo) => ({
  template_id: t.template_id,
  name: t.name,
  description: t.description,
  category: t.category,
  tier: t.tier,
  mechanisms: t.mechanisms,
  default_entity_count: t.default_entity_count,
  default_timepoint_count: t.default_timepoint_count,
  default_temporal_mode: t.default_temporal_mode,
  estimated_cost_usd: usd(t.estimatedCostMicros),
  estimated_duration_seconds: t.estimated_duration_seconds,
});

export function templateHandlers(deps: ApiDeps) {
  const list: RequestHandler = (req, res) => {
    const all = deps.catalog.list();
    const { category } = parse(ListTemplatesQuerySchema, req.query);
    const templates = category ? all.filter((t) => t.category === category) : all;
    res.json({ templates: templates.map(templateView), total: templates.length, categories: [...new Set(all.map((t) => t.category))] });
  };

  const get: RequestHandler = (req, res) => {
    const raw = req.params.template_id as unknown;
    const id = Array.isArray(raw) ? raw.join("/") : String(raw);
    const t = deps.catalog.resolve(id);
    if (!t) throw notFound(`Template ${id}`);
    res.json(templateView(t));
  };

  return { list, get };
}
