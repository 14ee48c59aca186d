import { presentedToken } from "../src/http/admin-auth.ts";

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

describe("the admin token a request presents", () => {
  const token = "tok-0123456789abcdef0123456789abcdef";

  it("reads Bearer everywhere and HTTP Basic only where browsers are let in", () => {
    expect(presentedToken(`Bearer ${token}`, false)).toBe(token);
    expect(presentedToken(`Bearer ${token}`, true)).toBe(token);
    expect(presentedToken(`Basic ${b64(`admin:${token}`)}`, false)).toBe("");
    expect(presentedToken(`Basic ${b64(`admin:${token}`)}`, true)).toBe(token);
  });

  it("takes the Basic password after the first colon, whatever the user name, and the scheme in any case", () => {
    expect(presentedToken(`Basic ${b64(`:${token}`)}`, true)).toBe(token);
    expect(presentedToken(`basic ${b64(`ops team:${token}`)}`, true)).toBe(token);
    // The password may itself hold colons (RFC 7617: only the user id may not).
    expect(presentedToken(`BASIC ${b64("admin:a:b:c")}`, true)).toBe("a:b:c");
    expect(presentedToken(`Basic ${b64("admin:pässwörd")}`, true)).toBe("pässwörd");
  });

  it("presents nothing for a missing, malformed or foreign header", () => {
    for (const header of [
      undefined,
      "",
      "Bearer",
      "Bearer ",
      `bearer ${token}`,
      `Token ${token}`,
      "Basic",
      "Basic !!!!",
      `Basic ${b64(token)}`, // no colon: no password
      `Basic ${b64(`admin:${token}`)} extra`,
    ]) {
      expect({ header, token: presentedToken(header, true) }).toEqual({ header, token: "" });
    }
  });
});
