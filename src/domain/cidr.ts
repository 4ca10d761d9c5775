// IP addresses and CIDR blocks as integers, so a source check is a mask and a compare. Our own
// strict parser: leading zeros ("010.0.0.1"), zone ids and partial forms are rejected, because
// other parsers read them differently (octal, interface-scoped) and a scope must mean one thing.

export interface IpAddress {
  readonly version: 4 | 6;
  readonly value: bigint;
}

export interface CidrBlock {
  readonly version: 4 | 6;
  readonly base: bigint;
  readonly mask: bigint;
  readonly prefix: number;
  /** Canonical text, e.g. "10.0.0.0/8" or "2001:db8::/32". */
  readonly text: string;
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
/** 0-999 without leading zeros: an octet or a prefix length (range checked separately). */
const SMALL_DECIMAL = /^(?:0|[1-9][0-9]{0,2})$/;
const MAPPED_PREFIX = 0xffffn;

function parseIPv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!SMALL_DECIMAL.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return BigInt(value);
}

/** 16-bit groups of one side of "::"; an IPv4 tail is allowed only at the very end. */
function groupsOf(text: string, ipv4Tail: boolean): number[] | undefined {
  if (text === "") return [];
  const parts = text.split(":");
  const groups: number[] = [];
  for (const [i, part] of parts.entries()) {
    if (ipv4Tail && i === parts.length - 1 && part.includes(".")) {
      const v4 = parseIPv4(part);
      if (v4 === undefined) return undefined;
      groups.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
    } else if (HEX_GROUP.test(part)) {
      groups.push(parseInt(part, 16));
    } else {
      return undefined;
    }
  }
  return groups;
}

function parseIPv6(text: string): bigint | undefined {
  if (text.length > 45) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = groupsOf(halves[0] ?? "", halves.length === 1);
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? "", true) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  let value = 0n;
  for (const group of [...head, ...new Array<number>(missing).fill(0), ...tail]) {
    value = (value << 16n) | BigInt(group);
  }
  return value;
}

export function parseIp(text: string): IpAddress | undefined {
  if (text.includes(":")) {
    const value = parseIPv6(text);
    return value === undefined ? undefined : { version: 6, value };
  }
  const value = parseIPv4(text);
  return value === undefined ? undefined : { version: 4, value };
}

export function formatIp(ip: IpAddress): string {
  if (ip.version === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((ip.value >> shift) & 0xffn)).join(".");
  }
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((s) =>
    Number((ip.value >> s) & 0xffffn),
  );
  // RFC 5952: compress the longest run (length ≥ 2) of zero groups, the first one on a tie.
  let best = { start: -1, length: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(":");
  const head = hex.slice(0, best.start).join(":");
  const tail = hex.slice(best.start + best.length).join(":");
  return `${head}::${tail}`;
}

/** A CIDR block, or the reason the text is not one (for admission messages). */
export function parseCidr(text: string): CidrBlock | { readonly error: string } {
  const slash = text.indexOf("/");
  if (slash < 0) return { error: `${text} is not a CIDR block (address/prefix, e.g. 10.0.0.0/16)` };
  const addressText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const ip = parseIp(addressText);
  if (!ip) return { error: `${text}: "${addressText}" is not an IPv4 or IPv6 address` };
  const width = ip.version === 4 ? 32 : 128;
  if (!SMALL_DECIMAL.test(prefixText) || Number(prefixText) > width) {
    return { error: `${text}: the prefix length must be 0-${width} for IPv${ip.version}` };
  }
  const prefix = Number(prefixText);
  const mask = ((1n << BigInt(width)) - 1n) ^ ((1n << BigInt(width - prefix)) - 1n);
  const base = ip.value & mask;
  const canonical = `${formatIp({ version: ip.version, value: base })}/${prefix}`;
  if (base !== ip.value) return { error: `${text} has host bits set; did you mean ${canonical}?` };
  return { version: ip.version, base, mask, prefix, text: canonical };
}

/**
 * A matcher over the blocks. An IPv4-mapped IPv6 address (::ffff:10.1.2.3, what a dual-stack
 * socket reports for an IPv4 peer) is tested as its IPv4 address as well as itself.
 */
export function compileCidrMatcher(
  blocks: readonly CidrBlock[],
): (address: string | undefined) => boolean {
  const v4 = blocks.filter((b) => b.version === 4);
  const v6 = blocks.filter((b) => b.version === 6);
  const inAny = (list: readonly CidrBlock[], value: bigint) =>
    list.some((b) => (value & b.mask) === b.base);
  return (address) => {
    const ip = address === undefined ? undefined : parseIp(address);
    if (!ip) return false;
    if (ip.version === 4) return inAny(v4, ip.value);
    if (inAny(v6, ip.value)) return true;
    return ip.value >> 32n === MAPPED_PREFIX && inAny(v4, ip.value & 0xffffffffn);
  };
}
