import { lookup } from "node:dns/promises";
import ipaddr from "ipaddr.js";

const IPV4_COMPATIBLE = ipaddr.parseCIDR("::/96") as [ipaddr.IPv6, number];

/**
 * Where webhooks may go. Without WEBHOOK_ALLOW_PRIVATE_NETWORKS a target must be
 * https and public: every address it names or resolves to must be ordinary
 * unicast (ipaddr.js classifies private, loopback, link-local, unique-local,
 * carrier-grade NAT, multicast, reserved, documentation and tunnel ranges as
 * something else; IPv4-mapped IPv6 is judged as the IPv4 address it carries).
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const ip = ipaddr.process(address);
  // ::/96 holds the deprecated IPv4-compatible addresses (RFC 4291 2.5.5.1). ipaddr.js judges the
  // dotted form (::127.0.0.1) as the IPv4 it carries but calls the hex form (::7f00:1) unicast; no
  // public host has one, so the hex form is refused.
  if (ip.kind() === "ipv6" && (ip as ipaddr.IPv6).match(IPV4_COMPATIBLE)) return false;
  return ip.range() === "unicast";
}

/** Names that are local by definition (RFC 6761 and common internal suffixes), refused without resolving them. */
const LOCAL_NAMES = /(^|\.)(localhost|local|internal|home\.arpa|localdomain)$/i;

/**
 * The create-time check of a batch's webhook_url: a message saying what is wrong,
 * or null. Names are not resolved here (a create must not wait on DNS, and the
 * answer may change): delivery checks every resolved address again.
 */
export function webhookUrlProblem(raw: string, allowPrivate: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "must be an absolute URL";
  }
  if (url.protocol !== "https:" && !(allowPrivate && url.protocol === "http:")) {
    return allowPrivate ? "must be an http:// or https:// URL" : "must be an https:// URL";
  }
  if (url.username || url.password) return "must not carry credentials";
  if (allowPrivate) return null;
  // A fully qualified name may end in a dot ("localhost."): it names the same host.
  const host = url.hostname.replace(/^\[|\]$/g, "").replace(/\.+$/, "");
  if (ipaddr.isValid(host)) return isPublicAddress(host) ? null : "must not target a private, loopback or link-local address";
  if (LOCAL_NAMES.test(host) || !host.includes(".")) return "must not target a private, loopback or link-local address";
  return null;
}

export class BlockedTargetError extends Error {}

/**
 * The resolver a delivery connects through: resolves the name, refuses it when
 * any address is not public (unless allowed), and hands the checked address to
 * the socket, so what was checked is what is connected to (no second lookup a
 * rebinding DNS answer could change). Node's http `lookup` option signature.
 */
export function guardedLookup(allowPrivate: boolean) {
  return (
    hostname: string,
    options: { family?: number | string; all?: boolean },
    callback: (err: Error | null, address: string | { address: string; family: number }[], family?: number) => void,
  ): void => {
    lookup(hostname, { all: true, verbatim: true })
      .then((addresses) => {
        if (addresses.length === 0) throw new Error(`${hostname} did not resolve`);
        const bad = addresses.find((a) => !isPublicAddress(a.address));
        if (bad && !allowPrivate) throw new BlockedTargetError(`${hostname} resolves to ${bad.address}, a private, loopback or link-local address`);
        if (options.all) callback(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      })
      .catch((err: Error) => callback(err, ""));
  };
}
