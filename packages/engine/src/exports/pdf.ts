import PDFDocument from "pdfkit";

/**
 * A real PDF from the Markdown text: headings set larger and bold, bullets
 * indented, table rows as plain lines. Reusing the Markdown keeps both exports
 * saying the same thing.
 */
export function renderPdf(markdown: string, title: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // A fixed creation date keeps the bytes reproducible for a given result.
    const doc = new PDFDocument({ size: "A4", margin: 56, info: { Title: title, Creator: "simbatch engine", CreationDate: new Date(0) } });
    const chunks: Buffer[] = [];
    doc.on("data", (c: Buffer) => chunks.push(c));
    doc.on("end", () => resolve(Buffer.concat(chunks)));
    doc.on("error", reject);
    for (const raw of markdown.split("\n")) writeLine(doc, raw);
    doc.end();
  });
}

function writeLine(doc: PDFKit.PDFDocument, raw: string): void {
  const heading = /^(#{1,4}) (.*)$/.exec(raw);
  if (heading) {
    const size = [20, 15, 12.5, 11][heading[1]!.length - 1]!;
    doc.moveDown(0.4).font("Helvetica-Bold").fontSize(size).text(heading[2]!).moveDown(0.2);
    return;
  }
  if (raw.startsWith("|---")) return;
  const text = raw.replace(/\*\*?|_/g, "").replace(/^> /, "");
  if (raw.startsWith("- "))
    doc
      .font("Helvetica")
      .fontSize(10)
      .text(`•  ${text.slice(2)}`, { indent: 10 });
  else if (raw.startsWith("|"))
    doc
      .font("Helvetica")
      .fontSize(9.5)
      .text(
        text
          .split("|")
          .map((c) => c.trim())
          .filter(Boolean)
          .join("  ·  "),
      );
  else if (text.trim() === "") doc.moveDown(0.3);
  else
    doc
      .font(raw.startsWith("*") ? "Helvetica-Oblique" : "Helvetica")
      .fontSize(10)
      .text(text);
}
