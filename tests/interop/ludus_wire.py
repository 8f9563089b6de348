"""A minimal, independent Python codec of the Ludus protocol v1.

Written from docs/PROTOCOL.md alone (sections 3, 4 and the catalog), not
from the Rust or JavaScript codecs, so that interop tests check the spec
itself. It knows only what the session handshake and heartbeats need:
varints, frames, Hello, Ping, Pong, Bye, and parsing Welcome and Error.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

MAX_FRAME_LEN = 65536
MAX_DATAGRAM_LEN = 1200
PROTOCOL_VERSION = 1

CAP_DATAGRAMS = 0x1
CAP_CHAT = 0x10

HELLO, WELCOME, PING, PONG, BYE, ERROR = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
NAMES = {HELLO: "Hello", WELCOME: "Welcome", PING: "Ping", PONG: "Pong", BYE: "Bye", ERROR: "Error"}

# Error codes (catalog, "Error codes").
UNEXPECTED_MESSAGE = 4
FRAME_TOO_LARGE_CODE = 3
SERVER_DRAINING = 502


class WireError(Exception):
    """Bytes that do not decode; `kind` as in PROTOCOL.md section 4."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}{': ' + detail if detail else ''}")
        self.kind = kind


def now_us() -> int:
    return time.time_ns() // 1000


# --- varints: unsigned LEB128, minimal, at most 10 bytes -------------------

def enc_varint(value: int) -> bytes:
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def dec_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, new position); raises WireError('truncated' / 'overlong_varint')."""
    value = 0
    for index in range(10):
        if pos + index >= len(buf):
            raise WireError("truncated", "in a varint")
        byte = buf[pos + index]
        if index == 9 and byte > 1:
            raise WireError("overlong_varint")
        value |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            if index > 0 and byte == 0:
                raise WireError("overlong_varint")
            return value, pos + index + 1
    raise WireError("overlong_varint")


# --- field encoders ----------------------------------------------------------

def u16(v: int) -> bytes:
    return struct.pack("<H", v)


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v)


def text(s: str, limit: int) -> bytes:
    raw = s.encode("utf-8")
    if len(raw) > limit:
        raise ValueError(f"text of {len(raw)} bytes over {limit}")
    return enc_varint(len(raw)) + raw


def option_text(s: str | None, limit: int) -> bytes:
    return b"\x00" if s is None else b"\x01" + text(s, limit)


def frame(body: bytes) -> bytes:
    """A frame: varint body length, then the body."""
    if not 1 <= len(body) <= MAX_FRAME_LEN:
        raise ValueError(f"frame body of {len(body)} bytes")
    return enc_varint(len(body)) + body


def hello(capabilities: int = CAP_DATAGRAMS | CAP_CHAT, client_name: str = "ludus-interop-py/0.1",
          nickname: str | None = None, min_version: int = 1, max_version: int = 1) -> bytes:
    body = (enc_varint(HELLO) + u16(min_version) + u16(max_version) + u32(capabilities)
            + text(client_name, 64) + option_text(None, 2048) + option_text(None, 2048)
            + option_text(nickname, 32))
    return frame(body)


def ping(ping_id: int, sent_us: int | None = None) -> bytes:
    return frame(enc_varint(PING) + u32(ping_id) + u64(now_us() if sent_us is None else sent_us))


def pong(ping_id: int, ping_sent_us: int, received_us: int, sent_us: int) -> bytes:
    return frame(enc_varint(PONG) + u32(ping_id) + u64(ping_sent_us) + u64(received_us) + u64(sent_us))


def bye(code: int = 0, reason: str = "") -> bytes:
    return frame(enc_varint(BYE) + u16(code) + text(reason, 256))


# --- decoding ----------------------------------------------------------------

class Reader:
    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            raise WireError("truncated")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def varint(self) -> int:
        value, self.pos = dec_varint(self.buf, self.pos)
        return value

    def boolean(self) -> bool:
        value = self.u8()
        if value > 1:
            raise WireError("invalid_tag", f"bool {value}")
        return value == 1

    def text(self, limit: int) -> str:
        length = self.varint()
        if length > limit:
            raise WireError("too_long", f"{length} > {limit}")
        try:
            return self.take(length).decode("utf-8")
        except UnicodeDecodeError as error:
            raise WireError("invalid_utf8") from error

    def done(self) -> None:
        if self.pos != len(self.buf):
            raise WireError("trailing_bytes", f"{len(self.buf) - self.pos} bytes")


@dataclass
class Message:
    code: int
    fields: dict

    @property
    def name(self) -> str:
        return NAMES.get(self.code, f"0x{self.code:x}")


def parse_body(body: bytes) -> Message:
    """Decodes the messages this client handles; others keep their raw body."""
    r = Reader(body)
    code = r.varint()
    f: dict = {}
    if code == WELCOME:
        f["version"] = r.u16()
        f["capabilities"] = r.u32()
        f["session_id"] = r.u64()
        f["player_id"] = r.u64()
        f["nickname"] = r.text(32)
        f["resumed"] = r.boolean()
        f["resume_token"] = r.text(2048)
        f["server_time_us"] = r.u64()
        f["heartbeat_ms"] = r.u32()
        f["idle_timeout_ms"] = r.u32()
        f["limits"] = {"max_frame_len": r.u32(), "max_datagram_len": r.u16(),
                       "max_chat_len": r.u16(), "max_inputs_per_second": r.u16()}
    elif code == PING:
        f["id"] = r.u32()
        f["sent_us"] = r.u64()
    elif code == PONG:
        f["id"] = r.u32()
        f["ping_sent_us"] = r.u64()
        f["received_us"] = r.u64()
        f["sent_us"] = r.u64()
    elif code == BYE:
        f["code"] = r.u16()
        f["reason"] = r.text(256)
    elif code == ERROR:
        f["code"] = r.u16()
        f["in_reply_to"] = r.u16()
        f["text"] = r.text(256)
    else:
        f["raw"] = body[r.pos:]
        r.pos = len(body)
    r.done()
    return Message(code, f)


def split_frames(buf: bytes) -> list[bytes]:
    """Bodies of the whole frames making up `buf` (a datagram payload)."""
    bodies, pos = [], 0
    while pos < len(buf):
        length, pos = dec_varint(buf, pos)
        if length == 0:
            raise WireError("empty_frame")
        if length > MAX_FRAME_LEN:
            raise WireError("frame_too_large")
        if pos + length > len(buf):
            raise WireError("truncated", "frame body")
        bodies.append(buf[pos:pos + length])
        pos += length
    return bodies


class FrameBuffer:
    """Reassembles frames from a reliable byte stream, whatever the chunking."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def push(self, data: bytes) -> None:
        self.buf += data

    def next_body(self) -> bytes | None:
        if not self.buf:
            return None
        try:
            length, pos = dec_varint(bytes(self.buf[:10]), 0)
        except WireError as error:
            if error.kind == "truncated" and len(self.buf) < 3:
                return None
            if error.kind == "truncated":
                raise WireError("frame_too_large", "prefix of 3+ bytes") from error
            raise
        if length == 0:
            raise WireError("empty_frame")
        if length > MAX_FRAME_LEN:
            raise WireError("frame_too_large", str(length))
        if len(self.buf) < pos + length:
            return None
        body = bytes(self.buf[pos:pos + length])
        del self.buf[:pos + length]
        return body


def rtt_ms(pong_fields: dict, t0_ns: int, t3_ns: int) -> float:
    """(t3 - t0) - (t2 - t1), PROTOCOL.md section 2, in milliseconds."""
    server_us = pong_fields["sent_us"] - pong_fields["received_us"]
    return max(0.0, (t3_ns - t0_ns) / 1e6 - server_us / 1e3)


def self_check() -> None:
    """The worked example of PROTOCOL.md section 6 ("Zoë"), byte for byte."""
    expected = bytes.fromhex(
        "1f 01 0100 0100 11000000 0d 6c7564 75 732d 776562 2f 302e31 00 00 01 04 5a6fc3ab"
        .replace(" ", ""))
    got = hello(capabilities=CAP_DATAGRAMS | CAP_CHAT, client_name="ludus-web/0.1", nickname="Zoë")
    if got != expected:
        raise AssertionError(f"Hello encoding differs from PROTOCOL.md: {got.hex()} != {expected.hex()}")
    assert enc_varint(300) == b"\xac\x02" and dec_varint(b"\xac\x02", 0) == (300, 2)
    for bad in (b"\x80\x00", b"\xff" * 9 + b"\x02"):
        try:
            dec_varint(bad, 0)
        except WireError as error:
            assert error.kind == "overlong_varint", error.kind
        else:
            raise AssertionError(f"accepted overlong varint {bad.hex()}")
