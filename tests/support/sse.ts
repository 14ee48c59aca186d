/** A test client of Server-Sent Events over fetch: parses events as they arrive and waits on them with deadlines. */
export interface SseEvent {
  id: string | null;
  event: string;
  data: any;
  /** When it was parsed (Date.now()). */
  at: number;
}

export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  ended = false;
  status = 0;
  headers: Headers = new Headers();
  body: string | null = null;
  private readonly abort = new AbortController();
  private waiters: (() => void)[] = [];

  static async open(url: string, headers: Record<string, string>): Promise<SseClient> {
    const c = new SseClient();
    const res = await fetch(url, { headers: { Accept: "text/event-stream", ...headers }, signal: c.abort.signal });
    c.status = res.status;
    c.headers = res.headers;
    if (!res.headers.get("content-type")?.startsWith("text/event-stream")) {
      c.body = await res.text();
      c.ended = true;
      return c;
    }
    void c.read(res.body!);
    return c;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          this.parse(buf.slice(0, end));
          buf = buf.slice(end + 2);
        }
      }
    } catch {
      // aborted
    }
    this.ended = true;
    this.notify();
  }

  private parse(block: string): void {
    let id: string | null = null;
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) this.comments.push(line.slice(1).trim());
      else if (line.startsWith("id: ")) id = line.slice(4);
      else if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (data.length > 0) this.events.push({ id, event, data: JSON.parse(data.join("\n")), at: Date.now() });
    this.notify();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once `done()` holds (checked on every event, comment and the end), or rejects after the deadline. */
  async until(done: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; saw ${this.events.length} events, ended=${this.ended}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  untilEnded(timeoutMs = 20_000): Promise<void> {
    return this.until(() => this.ended, "the stream's end", timeoutMs);
  }

  close(): void {
    this.abort.abort();
  }
}
