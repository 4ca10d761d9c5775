// CheckResponse → protobuf bytes, written by hand for the shapes toCheckResponse builds, so that
// `serve` never loads Envoy's proto tree (20 .proto files, ~10 MB of an idle process's RSS).
//
// The bytes are those protobufjs (proto-loader's serializer) writes for the same object: fields in
// field-number order, a field written whenever the object carries it, defaults included (an
// allow's status is code 0 and message ""), enums as their numbers, int32 as protobufjs writes it
// (a negative one as ten bytes). test/unit/check-response-wire.test.ts compares the two byte for
// byte. One deliberate difference: a lone UTF-16 surrogate. protobufjs writes one in a string
// shorter than 40 code units as its 3-byte CESU form (ED A0 80 for U+D800), which is not UTF-8 and
// which Envoy's C++ protobuf refuses in a proto3 string (the whole response would fail to parse:
// a parse error, not a log line; protocolbuffers/protobuf#7364);
// here, as protobufjs itself does for longer strings (Buffer's UTF-8 writer), it becomes U+FFFD.
//
// Field numbers and wire types, from Envoy's v3 protos:
//   CheckResponse (service/auth/v3/external_auth.proto): status 1 (google.rpc.Status),
//     denied_response 2, ok_response 3 (a oneof)
//   google.rpc.Status: code 1 (int32), message 2
//   OkHttpResponse: headers 2 (repeated HeaderValueOption), headers_to_remove 5 (repeated string)
//   DeniedHttpResponse: status 1 (envoy.type.v3.HttpStatus), headers 2, body 3
//   envoy.type.v3.HttpStatus: code 1 (enum StatusCode, its number the HTTP status)
//   HeaderValueOption (config/core/v3/base.proto): header 1 (HeaderValue), append_action 3 (enum)
//   HeaderValue: key 1, value 2
import type {
  CheckResponseMessage,
  HeaderAppendAction,
  HeaderValueOption,
} from "./to-check-response.ts";

const APPEND_ACTION: Readonly<Record<HeaderAppendAction, number>> = {
  APPEND_IF_EXISTS_OR_ADD: 0,
  ADD_IF_ABSENT: 1,
  OVERWRITE_IF_EXISTS_OR_ADD: 2,
  OVERWRITE_IF_EXISTS: 3,
};

/** A tag is (field number << 3) | wire type; 0 is a varint, 2 length-delimited. */
const tag = (field: number, wireType: 0 | 2) => (field << 3) | wireType;
const RESPONSE_STATUS = tag(1, 2);
const RESPONSE_DENIED = tag(2, 2);
const RESPONSE_OK = tag(3, 2);
const RPC_STATUS_CODE = tag(1, 0);
const RPC_STATUS_MESSAGE = tag(2, 2);
const OK_HEADERS = tag(2, 2);
const OK_HEADERS_TO_REMOVE = tag(5, 2);
const DENIED_STATUS = tag(1, 2);
const DENIED_HEADERS = tag(2, 2);
const DENIED_BODY = tag(3, 2);
const HTTP_STATUS_CODE = tag(1, 0);
const OPTION_HEADER = tag(1, 2);
const OPTION_APPEND_ACTION = tag(3, 0);
const HEADER_KEY = tag(1, 2);
const HEADER_VALUE = tag(2, 2);

/**
 * From this many UTF-16 code units on, strings are measured and written by Node's native UTF-8
 * code (one call each); below, a JS loop is cheaper than the call.
 */
const NATIVE_FROM = 64;

/** Node's Buffer has this without argument checks; protobufjs writes long strings with it too. */
interface WritableBuffer extends Buffer {
  utf8Write(s: string, offset: number, length: number): number;
}

/** Bytes of an unsigned 32-bit varint. */
function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

const isHighSurrogate = (c: number) => c >= 0xd800 && c < 0xdc00;

/**
 * Writes a message back to front into a scratch buffer: a field's content first, then its length,
 * which is then known, then its tag; fields and repeated elements last to first. One pass over
 * every string and no sizes computed ahead. The bytes written so far are buf[pos, buf.length).
 */
class BackwardWriter {
  buf = Buffer.allocUnsafeSlow(8192) as WritableBuffer;
  pos = this.buf.length;

  /** Bytes written so far: what a length is measured from (it survives `room` growing buf). */
  written(): number {
    return this.buf.length - this.pos;
  }

  /** Makes room for n more bytes below pos. */
  room(n: number): void {
    if (this.pos >= n) return;
    const used = this.written();
    const grown = Buffer.allocUnsafeSlow(Math.max(2 * this.buf.length, 2 * (used + n)));
    this.buf.copy(grown, grown.length - used, this.pos);
    this.buf = grown as WritableBuffer;
    this.pos = grown.length - used;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[--this.pos] = b;
  }

  varint(v: number): void {
    this.room(5);
    const buf = this.buf;
    let p = (this.pos -= varintSize(v));
    while (v >= 0x80) {
      buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[p] = v;
  }

  /** int32 as protobufjs writes it: truncated to 32 bits; a negative one sign-extended to 64. */
  int32(v: number): void {
    const i = v | 0;
    if (i >= 0) {
      this.varint(i);
      return;
    }
    // Ten bytes: the low 32 bits in seven-bit groups, then the sign's ones up to bit 63.
    this.room(10);
    const buf = this.buf;
    let p = (this.pos -= 10);
    let lo = i >>> 0;
    for (let k = 0; k < 4; k++) {
      buf[p++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    buf[p++] = 0xf0 | (lo & 0x0f); // bits 28–31, then 32–34 set, and the continuation bit
    for (let k = 0; k < 4; k++) buf[p++] = 0xff;
    buf[p] = 0x01;
  }

  /** A string field: UTF-8 (a lone surrogate as U+FFFD), its length, its tag. */
  string(fieldTag: number, s: string): void {
    const before = this.written();
    if (s.length >= NATIVE_FROM) {
      const n = Buffer.byteLength(s, "utf8");
      this.room(n);
      this.pos -= n;
      this.buf.utf8Write(s, this.pos, n);
    } else {
      this.room(3 * s.length);
      const buf = this.buf;
      let p = this.pos;
      for (let i = s.length - 1; i >= 0; i--) {
        let c = s.charCodeAt(i);
        if (c < 0x80) {
          buf[--p] = c;
        } else if (c < 0x800) {
          buf[--p] = 0x80 | (c & 0x3f);
          buf[--p] = 0xc0 | (c >> 6);
        } else if (c >= 0xdc00 && c < 0xe000 && i > 0 && isHighSurrogate(s.charCodeAt(i - 1))) {
          c = 0x10000 + ((s.charCodeAt(--i) - 0xd800) << 10) + (c - 0xdc00);
          buf[--p] = 0x80 | (c & 0x3f);
          buf[--p] = 0x80 | ((c >> 6) & 0x3f);
          buf[--p] = 0x80 | ((c >> 12) & 0x3f);
          buf[--p] = 0xf0 | (c >> 18);
        } else {
          if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // a lone surrogate
          buf[--p] = 0x80 | (c & 0x3f);
          buf[--p] = 0x80 | ((c >> 6) & 0x3f);
          buf[--p] = 0xe0 | (c >> 12);
        }
      }
      this.pos = p;
    }
    this.delimited(fieldTag, before);
  }

  /** Ends a length-delimited field whose content was written since `before`. */
  delimited(fieldTag: number, before: number): void {
    this.varint(this.written() - before);
    this.byte(fieldTag);
  }

  headerOptions(fieldTag: number, headers: readonly HeaderValueOption[]): void {
    for (let i = headers.length - 1; i >= 0; i--) {
      const h = headers[i] as HeaderValueOption;
      const option = this.written();
      if (h.append_action !== undefined) {
        this.int32(APPEND_ACTION[h.append_action]);
        this.byte(OPTION_APPEND_ACTION);
      }
      const header = this.written();
      this.string(HEADER_VALUE, h.header.value);
      this.string(HEADER_KEY, h.header.key);
      this.delimited(OPTION_HEADER, header);
      this.delimited(fieldTag, option);
    }
  }

  checkResponse(response: CheckResponseMessage): Buffer {
    this.pos = this.buf.length;
    const { status, ok_response: ok, denied_response: denied } = response;
    if (ok !== undefined) {
      const start = this.written();
      const remove = ok.headers_to_remove;
      for (let i = remove.length - 1; i >= 0; i--)
        this.string(OK_HEADERS_TO_REMOVE, remove[i] as string);
      this.headerOptions(OK_HEADERS, ok.headers);
      this.delimited(RESPONSE_OK, start);
    }
    if (denied !== undefined) {
      const start = this.written();
      this.string(DENIED_BODY, denied.body);
      this.headerOptions(DENIED_HEADERS, denied.headers);
      const httpStatus = this.written();
      this.int32(denied.status.code);
      this.byte(HTTP_STATUS_CODE);
      this.delimited(DENIED_STATUS, httpStatus);
      this.delimited(RESPONSE_DENIED, start);
    }
    const rpcStatus = this.written();
    this.string(RPC_STATUS_MESSAGE, status.message);
    this.int32(status.code);
    this.byte(RPC_STATUS_CODE);
    this.delimited(RESPONSE_STATUS, rpcStatus);
    // Copied out: the scratch is written over by the next response.
    const out = Buffer.allocUnsafe(this.written());
    this.buf.copy(out, 0, this.pos);
    return out;
  }
}

/** One response is encoded at a time (synchronously): one scratch serves them all. */
const writer = new BackwardWriter();

/** The protobuf encoding of a CheckResponse as toCheckResponse builds it. */
export function encodeCheckResponse(response: CheckResponseMessage): Buffer {
  return writer.checkResponse(response);
}
