// The source address of a request that came through proxies (SPEC §5b). The peer is the source
// unless it is a trusted proxy; then the right-most X-Forwarded-For entry that is not itself a
// trusted proxy (each proxy appends the address it saw, so everything left of that entry was
// written by the client and proves nothing), else X-Real-IP.
import { formatIp, parseIp } from "../domain/cidr.ts";

export type TrustedProxies = (address: string | undefined) => boolean;

/** "1.2.3.4", "1.2.3.4:567", "2001:db8::1" or "[2001:db8::1]:567" → canonical text, or undefined. */
export function parseForwardedAddress(raw: string): string | undefined {
  let text = raw.trim();
  let port: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  const v4WithPort = /^([0-9.]+):(\d{1,5})$/.exec(text);
  if (text.startsWith("[")) {
    if (!bracketed) return undefined;
    [text, port] = [bracketed[1] ?? "", bracketed[2]];
  } else if (v4WithPort) {
    [text, port] = [v4WithPort[1] ?? "", v4WithPort[2]];
  }
  if (port !== undefined && Number(port) > 65535) return undefined;
  const ip = parseIp(text);
  return ip ? formatIp(ip) : undefined;
}

export interface ForwardingHeaders {
  /** Every X-Forwarded-For header value, in the order received. */
  readonly forwardedFor: readonly string[];
  readonly realIp: readonly string[];
}

/** undefined when the trusted chain names no usable address: fail closed on CIDR rules. */
export function resolveSourceAddress(
  peer: string | undefined,
  headers: ForwardingHeaders,
  trusted: TrustedProxies,
): string | undefined {
  if (peer === undefined || !trusted(peer)) return peer;
  const hops = headers.forwardedFor
    .flatMap((value) => value.split(","))
    .map((hop) => hop.trim())
    .filter((hop) => hop !== "");
  let leftmost: string | undefined;
  for (let i = hops.length - 1; i >= 0; i--) {
    const address = parseForwardedAddress(hops[i] ?? "");
    // Garbage where the first untrusted hop should be: the chain cannot be read, do not guess.
    if (address === undefined) return undefined;
    if (!trusted(address)) return address;
    leftmost = address;
  }
  if (headers.realIp.length > 0) {
    return headers.realIp.length === 1 ? parseForwardedAddress(headers.realIp[0] ?? "") : undefined;
  }
  // Every hop is a trusted address: the client itself is one (as nginx real_ip_recursive reads it).
  return leftmost ?? peer;
}
