import type { ExportFile, ExportFormat, SimulationResultPayload } from "../types.ts";
import { renderMarkdown } from "./markdown.ts";
import { renderPdf } from "./pdf.ts";

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  json: "application/json",
  markdown: "text/markdown",
  pdf: "application/pdf",
};

/**
 * One export of a result: a pure function of it (the PDF's dates are fixed), so
 * an export rendered when downloaded gives the same bytes every time (see
 * STORED_EXPORT_FORMATS in packages/core for which formats are stored instead).
 */
export async function renderExport(result: SimulationResultPayload, format: ExportFormat): Promise<ExportFile> {
  return { format, contentType: CONTENT_TYPES[format], content: await render(result, format) };
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
