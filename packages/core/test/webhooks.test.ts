import { Webhook } from "standardwebhooks";
import { BlockedTargetError, guardedLookup, isPublicAddress, newWebhookSecret, signatureHeader, signWebhook, webhookUrlProblem } from "../src/index.ts";

describe("webhook signing", () => {
  it("produces signatures the Standard Webhooks library verifies", () => {
    const secret = newWebhookSecret();
    const body = JSON.stringify({ type: "batch.completed", batch: { batch_id: "batch_0123456789ab" } });
    const ts = Math.floor(Date.now() / 1000);
    const headers = {
      "webhook-id": "msg_batch_0123456789ab",
      "webhook-timestamp": String(ts),
      "webhook-signature": signWebhook(secret, "msg_batch_0123456789ab", ts, body),
    };
    expect(new Webhook(secret).verify(body, headers)).toMatchObject({ type: "batch.completed" });
    expect(() => new Webhook(newWebhookSecret()).verify(body, headers)).toThrow();
    expect(() => new Webhook(secret).verify(body.replace("completed", "failed"), headers)).toThrow();
  });

  it("lists one signature per secret in force", () => {
    const a = newWebhookSecret();
    const b = newWebhookSecret();
    const header = signatureHeader([a, b], "msg_1", 1_700_000_000, "{}");
    expect(header.split(" ")).toEqual([signWebhook(a, "msg_1", 1_700_000_000, "{}"), signWebhook(b, "msg_1", 1_700_000_000, "{}")]);
  });
});

describe("webhook targets", () => {
  it("classifies addresses", () => {
    for (const pub of ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"]) expect(isPublicAddress(pub)).toBe(true);
    for (const priv of [
      "127.0.0.1",
      "10.0.0.1",
      "172.16.5.4",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "::1",
      "fe80::1",
      "fd12::1",
      "::ffff:127.0.0.1",
      "::127.0.0.1",
      "::7f00:1",
      "224.0.0.1",
    ]) {
      expect(isPublicAddress(priv)).toBe(false);
    }
  });

  it("checks URLs at create time without resolving names", () => {
    expect(webhookUrlProblem("https://hooks.example.com/x", false)).toBeNull();
    expect(webhookUrlProblem("http://hooks.example.com/x", false)).toMatch(/https/);
    expect(webhookUrlProblem("https://user:pw@hooks.example.com/x", false)).toMatch(/credentials/);
    expect(webhookUrlProblem("https://192.168.0.10/x", false)).toMatch(/private/);
    expect(webhookUrlProblem("https://intranet/x", false)).toMatch(/private/);
    expect(webhookUrlProblem("https://[::127.0.0.1]/x", false)).toMatch(/private/);
    // A trailing dot names the same host.
    for (const url of ["https://localhost./x", "https://LOCALHOST../x", "https://box.internal./x", "https://intranet./x"]) {
      expect({ url, problem: webhookUrlProblem(url, false) }).toEqual({ url, problem: expect.stringMatching(/private/) });
    }
    expect(webhookUrlProblem("https://hooks.example.com./x", false)).toBeNull();
    expect(webhookUrlProblem("http://127.0.0.1:9999/x", true)).toBeNull();
    expect(webhookUrlProblem("ftp://example.com/x", true)).toMatch(/http/);
  });

  it("refuses at delivery a name that resolves to a private address, unless allowed", async () => {
    const resolve = (allow: boolean) =>
      new Promise<{ err: Error | null; address: unknown }>((r) => guardedLookup(allow)("localhost", {}, (err, address) => r({ err, address })));
    const refused = await resolve(false);
    expect(refused.err).toBeInstanceOf(BlockedTargetError);
    expect(refused.err!.message).toMatch(/localhost resolves to/);
    const allowed = await resolve(true);
    expect(allowed.err).toBeNull();
    expect(["127.0.0.1", "::1"]).toContain(allowed.address);
  });
});
