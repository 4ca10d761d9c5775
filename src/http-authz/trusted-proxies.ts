// --trusted-proxies: comma-separated CIDR blocks (a bare address is one host).
import { compileCidrMatcher, parseCidr, parseIp, type CidrBlock } from "../domain/cidr.ts";
import type { TrustedProxies } from "./source-address.ts";

export function parseTrustedProxies(text: string): readonly CidrBlock[] | { error: string } {
  const blocks: CidrBlock[] = [];
  for (const item of text.split(",").map((s) => s.trim())) {
    if (item === "") continue;
    const ip = item.includes("/") ? undefined : parseIp(item);
    const parsed = parseCidr(ip ? `${item}/${ip.version === 4 ? 32 : 128}` : item);
    if ("error" in parsed) return { error: parsed.error };
    blocks.push(parsed);
  }
  return blocks;
}

export function trustedProxyMatcher(blocks: readonly CidrBlock[]): TrustedProxies {
  if (blocks.length === 0) return () => false;
  return compileCidrMatcher(blocks);
}
