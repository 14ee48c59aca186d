import type { ExportFile, ExportFormat, SimulationResultPayload } from "../types.ts";
import { renderMarkdown } from "./markdown.ts";
import { renderPdf } from "./pdf.ts";

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  json: "application/json",
  markdown: "text/markdown",
  pdf: "application/pdf",
};

/** Every requested format of one result; shared by all engines so exports look alike. */
export async function renderExports(result: SimulationResultPayload, formats: readonly ExportFormat[]): Promise<ExportFile[]> {
  const out: ExportFile[] = [];
  for (const format of [...new Set(formats)]) {
    out.push({ format, contentType: CONTENT_TYPES[format], content: await render(result, format) });
  }
  return out;
}

async function render(result: SimulationResultPayload, format: ExportFormat): Promise<Buffer> {
  switch (format) {
    case "json":
      return Buffer.from(JSON.stringify(result, null, 2));
    case "markdown":
      return Buffer.from(renderMarkdown(result));
    case "pdf":
      return renderPdf(renderMarkdown(result), typeof result["title"] === "string" ? result["title"] : "Simulation result");
  }
}
