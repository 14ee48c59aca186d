import { EventSourceParserStream } from "eventsource-parser/stream";

/** One server-sent event as it came off the wire. */
export interface RawEvent {
  event: string;
  id: string | undefined;
  data: string;
}

/** The events of a `text/event-stream` body; keep-alive comments are skipped by the parser. */
export async function* readEvents(res: Response): AsyncGenerator<RawEvent> {
  if (!res.body) return;
  const events = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
  for await (const ev of events) yield { event: ev.event ?? "message", id: ev.id, data: ev.data };
}

/**
 * The JSON values of an `application/x-ndjson` body, one per line, parsed as the
 * bytes arrive; only the current chunk is scanned for line ends, so a long line
 * spread over many chunks costs its length once.
 */
export async function* readNdjson<T>(res: Response): AsyncGenerator<T> {
  if (!res.body) return;
  let parts: string[] = [];
  for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) {
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf("\n", start)) >= 0) {
      parts.push(chunk.slice(start, nl));
      const line = parts.join("");
      parts = [];
      if (line.trim()) yield JSON.parse(line) as T;
      start = nl + 1;
    }
    if (start < chunk.length) parts.push(chunk.slice(start));
  }
  const rest = parts.join("");
  if (rest.trim()) yield JSON.parse(rest) as T;
}
