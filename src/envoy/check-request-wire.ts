// A CheckRequest read straight from its protobuf bytes, keeping only the fields a decision needs
// (RequestFields). Decoding the whole message with proto-loader builds an object for every header,
// peer label, metadata entry and TLS field Envoy sends, then copies it once more (toObject); here
// everything else is skipped by its length, and of the headers only the wanted names are decoded.
//
// It reads exactly what protobufjs reads for a well-formed message, field for field: a later
// occurrence of a string or a message field replaces the earlier one (protobufjs replaces rather
// than merges sub-messages), map entries default to "" and a later key wins, strings are UTF-8
// with replacement characters, raw_value is Latin-1 (test/unit/check-request-wire.test.ts
// compares the two on random, hostile and hand-written messages). A field whose wire type is not
// its declared type, a varint protobufjs would read to another length, and anything else
// malformed in what it walks throws WireError, which the server answers with a deny. The content
// of a field no decision reads (metadata, TLS, timestamps) is skipped by its length unchecked:
// garbage inside it is not refused, as protobufjs would, but cannot change what is read.
import {
  isWantedHeader,
  WANTED_HEADERS,
  type RequestFields,
  type WantedHeader,
} from "./from-check-request.ts";

export class WireError extends Error {
  override readonly name = "WireError";
}

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

/** Wanted header names as bytes, for comparing a `headers` map key without decoding it. */
const WANTED_BYTES = WANTED_HEADERS.map((name) => [...Buffer.from(name, "latin1")]);
/** A header_map key longer than this cannot lowercase to a wanted name (not decoded). */
const MAX_WANTED_KEY_BYTES = 3 * Math.max(...WANTED_HEADERS.map((n) => n.length));
const NAMESPACE_KEY = [...Buffer.from("namespace", "latin1")];

/** Field number → a bit per wire type its declared type may arrive in, for one message type. */
export type WireTypes = readonly number[];

/** Besides the wire type bits: how protobufjs reads a declared varint field (see Reader.skip). */
const VARINT_32 = 1 << 8;
const VARINT_64 = 1 << 9;

const ANY_WIRE_TYPE = 0xff;
/** string, bytes, a message, a map entry (no field read here is a repeated number). */
const LENGTH = 1 << LENGTH_DELIMITED;
/** int32, uint32, bool, an enum: protobufjs reads them as 32-bit varints. */
const INT32 = (1 << VARINT) | VARINT_32;
/** int64, uint64, sint64. */
const INT64 = (1 << VARINT) | VARINT_64;

/**
 * Field number → the wire types its declared type may arrive in, for one message type; numbers
 * it does not declare take any wire type (protobufjs skips them by the one they carry).
 */
function declared(fields: Readonly<Record<number, number>>): WireTypes {
  const numbers = Object.keys(fields).map(Number);
  const bits = new Array<number>(1 + Math.max(...numbers)).fill(ANY_WIRE_TYPE);
  for (const n of numbers) bits[n] = fields[n] as number;
  return bits;
}

/**
 * The declared types of every message the reader walks, from Envoy's v3 protos (field numbers
 * and types are facts of the protocol; test/unit/check-request-wire.test.ts compares each table
 * with the protos as proto-loader loads them). Keeping them here spares `serve` the proto tree.
 */
export const DECLARED_WIRE_TYPES = {
  // service/auth/v3/external_auth.proto: attributes 1
  "envoy.service.auth.v3.CheckRequest": declared({ 1: LENGTH }),
  // service/auth/v3/attribute_context.proto: source 1, destination 2, request 4,
  // context_extensions 10 (map), metadata_context 11, tls_session 12, route_metadata_context 13
  "envoy.service.auth.v3.AttributeContext": declared({
    1: LENGTH,
    2: LENGTH,
    4: LENGTH,
    10: LENGTH,
    11: LENGTH,
    12: LENGTH,
    13: LENGTH,
  }),
  // address 1, service 2, labels 3 (map), principal 4, certificate 5
  "envoy.service.auth.v3.AttributeContext.Peer": declared({
    1: LENGTH,
    2: LENGTH,
    3: LENGTH,
    4: LENGTH,
    5: LENGTH,
  }),
  // time 1, http 2
  "envoy.service.auth.v3.AttributeContext.Request": declared({ 1: LENGTH, 2: LENGTH }),
  // id 1, method 2, headers 3 (map), path 4, host 5, scheme 6, query 7, fragment 8,
  // size 9 (int64), protocol 10, body 11, raw_body 12 (bytes), header_map 13
  "envoy.service.auth.v3.AttributeContext.HttpRequest": declared({
    1: LENGTH,
    2: LENGTH,
    3: LENGTH,
    4: LENGTH,
    5: LENGTH,
    6: LENGTH,
    7: LENGTH,
    8: LENGTH,
    9: INT64,
    10: LENGTH,
    11: LENGTH,
    12: LENGTH,
    13: LENGTH,
  }),
  // config/core/v3/address.proto: socket_address 1, pipe 2, envoy_internal_address 3
  "envoy.config.core.v3.Address": declared({ 1: LENGTH, 2: LENGTH, 3: LENGTH }),
  // protocol 1 (enum), address 2, port_value 3 (uint32), named_port 4, resolver_name 5,
  // ipv4_compat 6 (bool)
  "envoy.config.core.v3.SocketAddress": declared({
    1: INT32,
    2: LENGTH,
    3: INT32,
    4: LENGTH,
    5: LENGTH,
    6: INT32,
  }),
  // config/core/v3/base.proto: headers 1 (repeated HeaderValue)
  "envoy.config.core.v3.HeaderMap": declared({ 1: LENGTH }),
  // key 1, value 2, raw_value 3 (bytes)
  "envoy.config.core.v3.HeaderValue": declared({ 1: LENGTH, 2: LENGTH, 3: LENGTH }),
} as const satisfies Record<string, WireTypes>;

/** map<string, string> entries: key 1, value 2. */
const ENTRY: WireTypes = [ANY_WIRE_TYPE, LENGTH, LENGTH];
const CHECK_REQUEST = DECLARED_WIRE_TYPES["envoy.service.auth.v3.CheckRequest"];
const ATTRIBUTE_CONTEXT = DECLARED_WIRE_TYPES["envoy.service.auth.v3.AttributeContext"];
const PEER = DECLARED_WIRE_TYPES["envoy.service.auth.v3.AttributeContext.Peer"];
const ADDRESS = DECLARED_WIRE_TYPES["envoy.config.core.v3.Address"];
const SOCKET_ADDRESS = DECLARED_WIRE_TYPES["envoy.config.core.v3.SocketAddress"];
const REQUEST = DECLARED_WIRE_TYPES["envoy.service.auth.v3.AttributeContext.Request"];
const HTTP_REQUEST = DECLARED_WIRE_TYPES["envoy.service.auth.v3.AttributeContext.HttpRequest"];
const HEADER_MAP = DECLARED_WIRE_TYPES["envoy.config.core.v3.HeaderMap"];
const HEADER_VALUE = DECLARED_WIRE_TYPES["envoy.config.core.v3.HeaderValue"];

/** Node's Buffer has these without argument checks; protobufjs reads strings with them too. */
interface SliceableBuffer extends Buffer {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
}

/** A cursor over a message's bytes. Every read is bounded by the end of the enclosing message. */
class Reader {
  pos = 0;
  /** The wire type of the field `field()` read last, and what its message declares for it. */
  wireType = 0;
  declared = 0;
  readonly buf: SliceableBuffer;

  constructor(buf: Buffer) {
    this.buf = buf as SliceableBuffer;
  }

  /**
   * A varint's low 32 bits, read as protobufjs reads tags and lengths: after a fifth byte that
   * still continues, the next five bytes are passed over unread.
   */
  uint32(end: number): number {
    let value = 0;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= end) throw new WireError("truncated varint");
      const b = this.buf[this.pos++] as number;
      value |= (b & 0x7f) << (7 * i);
      if (b < 0x80) return value >>> 0;
    }
    this.advance(5, end);
    return value >>> 0;
  }

  /**
   * The next field's number; its wire type must be one its declared type arrives in (protobufjs
   * would read it as the declared type anyway: such bytes are refused rather than guessed at).
   */
  field(end: number, declared: WireTypes): number {
    const tag = this.uint32(end);
    const number = tag >>> 3;
    this.wireType = tag & 7;
    this.declared = declared[number] ?? ANY_WIRE_TYPE;
    if (((this.declared >> this.wireType) & 1) === 0) {
      throw new WireError(`field ${number} arrived as wire type ${this.wireType}`);
    }
    return number;
  }

  /** The end of a length-delimited field that starts here; it must lie within `end`. */
  lengthEnd(end: number): number {
    const length = this.uint32(end);
    if (length > end - this.pos) throw new WireError("length beyond the enclosing message");
    return this.pos + length;
  }

  string(end: number): string {
    const stop = this.lengthEnd(end);
    const s = this.buf.utf8Slice(this.pos, stop);
    this.pos = stop;
    return s;
  }

  /** Passes over the field `field()` read last. */
  skip(end: number): void {
    switch (this.wireType) {
      case VARINT: {
        // Up to the first byte without the continuation bit, as protobufjs skips an undeclared
        // varint. A declared one it reads by its type, and a 32-bit read takes 5 bytes, or 10
        // when the fifth continues: any other length would leave the two readers at different
        // places, so it is refused (canonical encodings are 1–5 bytes, or 10 for a negative).
        const start = this.pos;
        do {
          if (this.pos >= end) throw new WireError("truncated varint");
        } while ((this.buf[this.pos++] as number) >= 0x80);
        const length = this.pos - start;
        if ((this.declared & (VARINT_32 | VARINT_64)) !== 0 && length > 10)
          throw new WireError("varint longer than 10 bytes");
        if ((this.declared & VARINT_32) !== 0 && length > 5 && length !== 10)
          throw new WireError(`a ${length}-byte varint in a 32-bit field`);
        return;
      }
      case FIXED64:
        this.advance(8, end);
        return;
      case LENGTH_DELIMITED:
        this.pos = this.lengthEnd(end);
        return;
      case FIXED32:
        this.advance(4, end);
        return;
      default:
        // Groups (3, 4) are long deprecated and never sent by Envoy; 6 and 7 do not exist.
        throw new WireError(`wire type ${this.wireType} not accepted`);
    }
  }

  advance(n: number, end: number): void {
    if (end - this.pos < n) throw new WireError("truncated fixed-width field");
    this.pos += n;
  }
}

/**
 * Whether buf[start, end) holds exactly these bytes. Keys are short: a JS loop is cheaper than a
 * call into Buffer.compare for each.
 */
function spells(buf: Buffer, start: number, end: number, bytes: readonly number[]): boolean {
  if (bytes.length !== end - start) return false;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== buf[start + i]) return false;
  return true;
}

/** The index in WANTED_HEADERS of the name these bytes spell exactly, or -1. */
function wantedIndex(buf: Buffer, start: number, end: number): number {
  return WANTED_BYTES.findIndex((bytes) => spells(buf, start, end, bytes));
}

/**
 * A `headers` map entry (key 1, value 2, both "" when absent). A wanted key's value is only
 * located here ([start, end) in `spans`, a later entry replacing an earlier one); readHttp decodes
 * the values the view will read once the whole HttpRequest has been seen.
 */
function readHeadersEntry(r: Reader, end: number, spans: Int32Array): void {
  const stop = r.lengthEnd(end);
  let wanted = -1;
  let valueStart = 0;
  let valueEnd = 0;
  while (r.pos < stop) {
    const n = r.field(stop, ENTRY);
    if (n === 1 || n === 2) {
      const fieldEnd = r.lengthEnd(stop);
      if (n === 1) wanted = wantedIndex(r.buf, r.pos, fieldEnd);
      else {
        valueStart = r.pos;
        valueEnd = fieldEnd;
      }
      r.pos = fieldEnd;
    } else r.skip(stop);
  }
  if (wanted >= 0) {
    spans[2 * wanted] = valueStart;
    spans[2 * wanted + 1] = valueEnd;
  }
}

/**
 * Whether the view reads this header of the `headers` map (see checkViewOf): authorization
 * always; the others only as a fallback for an HttpRequest field that is absent or empty.
 */
function headerRead(name: WantedHeader, out: RequestFields): boolean {
  switch (name) {
    case "authorization":
      return true;
    case ":authority":
    case "host":
      return !out.host;
    case ":path":
      return !out.path;
    case ":method":
      return !out.method;
    case "x-request-id":
      return !out.id;
  }
}

/** A `context_extensions` entry: only the value under "namespace" is read. */
function readExtensionsEntry(r: Reader, end: number, out: RequestFields): void {
  const stop = r.lengthEnd(end);
  let isNamespace = false;
  let valueStart = 0;
  let valueEnd = 0;
  while (r.pos < stop) {
    const n = r.field(stop, ENTRY);
    if (n === 1 || n === 2) {
      const fieldEnd = r.lengthEnd(stop);
      if (n === 1) {
        isNamespace = spells(r.buf, r.pos, fieldEnd, NAMESPACE_KEY);
      } else {
        valueStart = r.pos;
        valueEnd = fieldEnd;
      }
      r.pos = fieldEnd;
    } else r.skip(stop);
  }
  if (isNamespace) out.contextNamespace = r.buf.utf8Slice(valueStart, valueEnd);
}

/** One HeaderValue of header_map: kept when its key, lowercased, is a wanted name. */
function readHeaderValue(r: Reader, end: number, out: RequestFields): void {
  const stop = r.lengthEnd(end);
  let keyStart = -1;
  let keyEnd = -1;
  let valueStart = 0;
  let valueEnd = 0;
  let rawStart = 0;
  let rawEnd = 0;
  while (r.pos < stop) {
    const n = r.field(stop, HEADER_VALUE);
    if (n >= 1 && n <= 3) {
      const fieldEnd = r.lengthEnd(stop);
      if (n === 1) {
        keyStart = r.pos;
        keyEnd = fieldEnd;
      } else if (n === 2) {
        valueStart = r.pos;
        valueEnd = fieldEnd;
      } else {
        rawStart = r.pos;
        rawEnd = fieldEnd;
      }
      r.pos = fieldEnd;
    } else r.skip(stop);
  }
  if (keyStart < 0 || keyEnd - keyStart > MAX_WANTED_KEY_BYTES) return;
  const name = r.buf.utf8Slice(keyStart, keyEnd).toLowerCase();
  if (!isWantedHeader(name)) return;
  (out.headerMap ??= []).push({
    name,
    value:
      rawEnd > rawStart
        ? r.buf.latin1Slice(rawStart, rawEnd)
        : r.buf.utf8Slice(valueStart, valueEnd),
  });
}

/** HeaderMap { repeated HeaderValue headers = 1; }, replacing an earlier header_map. */
function readHeaderMap(r: Reader, end: number, out: RequestFields): void {
  const stop = r.lengthEnd(end);
  out.headerMapUsed = false;
  out.headerMap = undefined;
  while (r.pos < stop) {
    if (r.field(stop, HEADER_MAP) === 1) {
      out.headerMapUsed = true;
      readHeaderValue(r, stop, out);
    } else r.skip(stop);
  }
}

/** HttpRequest (attribute_context.proto): id 1, method 2, headers 3, path 4, host 5, header_map 13. */
function readHttp(r: Reader, end: number, out: RequestFields): void {
  // [start, end) of each wanted header's value in the `headers` map, -1 when absent.
  const spans = new Int32Array(2 * WANTED_HEADERS.length).fill(-1);
  while (r.pos < end) {
    switch (r.field(end, HTTP_REQUEST)) {
      case 1:
        out.id = r.string(end);
        break;
      case 2:
        out.method = r.string(end);
        break;
      case 3:
        readHeadersEntry(r, end, spans);
        break;
      case 4:
        out.path = r.string(end);
        break;
      case 5:
        out.host = r.string(end);
        break;
      case 13:
        readHeaderMap(r, end, out);
        break;
      default:
        r.skip(end);
    }
  }
  WANTED_HEADERS.forEach((name, w) => {
    const start = spans[2 * w] as number;
    if (start < 0 || !headerRead(name, out)) return;
    (out.headers ??= {})[name] = r.buf.utf8Slice(start, spans[2 * w + 1] as number);
  });
}

function resetHttp(out: RequestFields): void {
  out.id = out.method = out.path = out.host = undefined;
  out.headers = undefined;
  out.headerMapUsed = false;
  out.headerMap = undefined;
}

/** Request: http 2 (time 1 is skipped); a later `http` replaces an earlier one. */
function readRequest(r: Reader, end: number, out: RequestFields): void {
  while (r.pos < end) {
    if (r.field(end, REQUEST) === 2) {
      const stop = r.lengthEnd(end);
      resetHttp(out);
      readHttp(r, stop, out);
    } else r.skip(end);
  }
}

/** SocketAddress: address 2. */
function readSocketAddress(r: Reader, end: number): string | undefined {
  let address: string | undefined;
  while (r.pos < end) {
    if (r.field(end, SOCKET_ADDRESS) === 2) address = r.string(end);
    else r.skip(end);
  }
  return address;
}

/** Address: socket_address 1 (pipe and internal addresses have no IP: skipped). */
function readAddress(r: Reader, end: number): string | undefined {
  let address: string | undefined;
  while (r.pos < end) {
    if (r.field(end, ADDRESS) === 1) address = readSocketAddress(r, r.lengthEnd(end));
    else r.skip(end);
  }
  return address;
}

interface PeerFields {
  address: string | undefined;
  principal: string | undefined;
}

/** Peer: address 1, principal 4. */
function readPeer(r: Reader, end: number): PeerFields {
  const peer: PeerFields = { address: undefined, principal: undefined };
  while (r.pos < end) {
    const n = r.field(end, PEER);
    if (n === 1) peer.address = readAddress(r, r.lengthEnd(end));
    else if (n === 4) peer.principal = r.string(end);
    else r.skip(end);
  }
  return peer;
}

/** AttributeContext: source 1, destination 2, request 4, context_extensions 10. */
function readAttributes(r: Reader, end: number, out: RequestFields): void {
  while (r.pos < end) {
    switch (r.field(end, ATTRIBUTE_CONTEXT)) {
      case 1: {
        const peer = readPeer(r, r.lengthEnd(end));
        out.sourceAddress = peer.address;
        out.sourcePrincipal = peer.principal;
        break;
      }
      case 2:
        out.destinationPrincipal = readPeer(r, r.lengthEnd(end)).principal;
        break;
      case 4: {
        const stop = r.lengthEnd(end);
        resetHttp(out);
        readRequest(r, stop, out);
        break;
      }
      case 10:
        readExtensionsEntry(r, end, out);
        break;
      default:
        r.skip(end);
    }
  }
}

/** CheckRequest bytes → the fields a decision reads. Throws WireError on malformed bytes. */
export function readCheckRequestFields(bytes: Buffer): RequestFields {
  const r = new Reader(bytes);
  const end = bytes.length;
  let out: RequestFields = { headerMapUsed: false };
  while (r.pos < end) {
    if (r.field(end, CHECK_REQUEST) === 1) {
      const stop = r.lengthEnd(end);
      // A second `attributes` replaces the first, as in protobufjs.
      out = { headerMapUsed: false };
      readAttributes(r, stop, out);
    } else r.skip(end);
  }
  return out;
}
