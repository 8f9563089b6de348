"""An aioquic HTTP/3 + WebTransport client for the interop tests.

One QuicConnectionProtocol that
  - sends requests (plain GET, extended CONNECT) and collects their responses,
  - routes the bytes of WebTransport streams the client itself opened: aioquic
    does not mark a client-opened bidi WebTransport stream as WebTransport on
    the receive side, so the server's bytes would reach H3Connection as a
    request stream and be misparsed as HTTP/3 frames; they are taken out of
    the QUIC event stream before H3Connection sees them,
  - queues WebTransport datagrams (the quarter-stream-id prefix is aioquic's
    business: send_datagram/DatagramReceived carry the session's stream id),
  - records how the connection ended.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from dataclasses import dataclass, field
from urllib.parse import urlparse

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, DatagramReceived, HeadersReceived, WebTransportStreamDataReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamDataReceived, StreamReset

import ludus_wire as wire

# RFC 9297 / draft-ietf-webtrans-http3 capsule and settings numbers.
CLOSE_WEBTRANSPORT_SESSION = 0x2843
SETTING_ENABLE_WEBTRANSPORT = 0x2B603742
SETTING_WEBTRANSPORT_MAX_SESSIONS = 0xC671706A
SETTING_H3_DATAGRAM = 0x33
SETTING_ENABLE_CONNECT_PROTOCOL = 0x08
H3_NO_ERROR = 0x100


class Failure(Exception):
    """A check failed; the message says which and why."""


@dataclass
class Response:
    stream_id: int
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    got_headers: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    reset_code: int | None = None

    @property
    def status(self) -> int | None:
        value = self.headers.get(b":status")
        return int(value) if value is not None else None


class RawStream:
    """A client-opened WebTransport stream: the server's bytes, in order."""

    def __init__(self, stream_id: int):
        self.stream_id = stream_id
        self.frames = wire.FrameBuffer()
        self.changed = asyncio.Event()
        self.ended = False
        self.reset_code: int | None = None
        self.bytes_received = 0

    def feed(self, data: bytes, end: bool) -> None:
        self.frames.push(data)
        self.bytes_received += len(data)
        self.ended = self.ended or end
        self.changed.set()

    async def next_message(self, timeout: float) -> wire.Message | None:
        """The next whole message; None if the stream ended or was reset."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            body = self.frames.next_body()
            if body is not None:
                return wire.parse_body(body)
            if self.ended or self.reset_code is not None:
                return None
            self.changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise Failure(f"stream {self.stream_id}: no message within {timeout:.1f} s")
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass


class H3Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic, enable_webtransport=True)
        self.responses: dict[int, Response] = {}
        self.raw: dict[int, RawStream] = {}
        self.datagrams: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self.datagram_arrived = asyncio.Event()
        self.server_streams: dict[int, int] = {}
        self.terminated: asyncio.Future = asyncio.get_event_loop().create_future()

    # -- events ---------------------------------------------------------------

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            if not self.terminated.done():
                self.terminated.set_result((event.error_code, event.frame_type, event.reason_phrase))
            for response in self.responses.values():
                response.ended.set()
                response.got_headers.set()
            for raw in self.raw.values():
                raw.ended = True
                raw.changed.set()
        if isinstance(event, StreamDataReceived) and event.stream_id in self.raw:
            self.raw[event.stream_id].feed(event.data, event.end_stream)
            return
        if isinstance(event, StreamReset):
            if event.stream_id in self.raw:
                self.raw[event.stream_id].reset_code = event.error_code
                self.raw[event.stream_id].changed.set()
                return
            if event.stream_id in self.responses:
                response = self.responses[event.stream_id]
                response.reset_code = event.error_code
                response.got_headers.set()
                response.ended.set()
        for h3_event in self.h3.handle_event(event):
            self._h3_event(h3_event)

    def _h3_event(self, event) -> None:
        if isinstance(event, HeadersReceived):
            response = self.responses.get(event.stream_id)
            if response is not None:
                if not response.headers:
                    response.headers = dict(event.headers)
                response.got_headers.set()
                if event.stream_ended:
                    response.ended.set()
        elif isinstance(event, DataReceived):
            response = self.responses.get(event.stream_id)
            if response is not None:
                response.body += event.data
                if event.stream_ended:
                    response.ended.set()
        elif isinstance(event, DatagramReceived):
            self.datagrams.put_nowait((event.stream_id, event.data))
            self.datagram_arrived.set()
        elif isinstance(event, WebTransportStreamDataReceived):
            # Version 1 uses no server-opened streams; count what arrives.
            self.server_streams[event.stream_id] = self.server_streams.get(event.stream_id, 0) + len(event.data)

    # -- requests -------------------------------------------------------------

    def request(self, method: str, authority: str, path: str, *, protocol: str | None = None,
                extra: list[tuple[bytes, bytes]] | None = None, end_stream: bool = True) -> Response:
        stream_id = self._quic.get_next_available_stream_id()
        headers = [(b":method", method.encode()), (b":scheme", b"https"),
                   (b":authority", authority.encode()), (b":path", path.encode())]
        if protocol is not None:
            headers.append((b":protocol", protocol.encode()))
        headers += extra or []
        response = Response(stream_id)
        self.responses[stream_id] = response
        self.h3.send_headers(stream_id, headers, end_stream=end_stream)
        self.transmit()
        return response

    async def wait_headers(self, response: Response, timeout: float, what: str) -> Response:
        try:
            await asyncio.wait_for(response.got_headers.wait(), timeout)
        except asyncio.TimeoutError:
            raise Failure(f"{what}: no response headers within {timeout:.1f} s") from None
        return response

    async def wait_ended(self, response: Response, timeout: float, what: str) -> Response:
        try:
            await asyncio.wait_for(response.ended.wait(), timeout)
        except asyncio.TimeoutError:
            raise Failure(f"{what}: response not finished within {timeout:.1f} s") from None
        return response

    async def wait_settings(self, timeout: float) -> dict[int, int]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.h3.received_settings is None:
            if self.terminated.done():
                raise Failure(f"connection closed before SETTINGS: {self.terminated.result()}")
            if loop.time() > deadline:
                raise Failure(f"no HTTP/3 SETTINGS from the server within {timeout:.1f} s")
            await asyncio.sleep(0.01)
        return self.h3.received_settings

    # -- WebTransport ---------------------------------------------------------

    async def open_session(self, authority: str, path: str, origin: str | None, timeout: float) -> Response:
        extra = [(b"origin", origin.encode())] if origin else []
        response = self.request("CONNECT", authority, path, protocol="webtransport", extra=extra, end_stream=False)
        return await self.wait_headers(response, timeout, f"CONNECT {path}")

    def open_bidi(self, session_id: int) -> RawStream:
        stream_id = self.h3.create_webtransport_stream(session_id, is_unidirectional=False)
        raw = RawStream(stream_id)
        self.raw[stream_id] = raw
        self.transmit()
        return raw

    def send_stream(self, stream_id: int, data: bytes, end: bool = False) -> None:
        self._quic.send_stream_data(stream_id, data, end_stream=end)
        self.transmit()

    def send_datagram(self, session_id: int, data: bytes) -> None:
        self.h3.send_datagram(session_id, data)
        self.transmit()

    def close_session(self, session_id: int, code: int = 0, reason: str = "") -> None:
        """CLOSE_WEBTRANSPORT_SESSION capsule on the CONNECT stream, then FIN."""
        payload = code.to_bytes(4, "big") + reason.encode()
        capsule = encode_uint_var(CLOSE_WEBTRANSPORT_SESSION) + encode_uint_var(len(payload)) + payload
        self.h3.send_data(session_id, capsule, end_stream=True)
        self.transmit()

    async def terminated_within(self, timeout: float):
        """(error_code, frame_type, reason) if the connection ended in time, else None."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.terminated), timeout)
        except asyncio.TimeoutError:
            return None


def client_config(cafile: str | None, server_name: str, insecure: bool) -> QuicConfiguration:
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, max_datagram_frame_size=65536,
                               server_name=server_name, idle_timeout=15.0)
    if cafile:
        if not os.path.isfile(cafile):
            raise SystemExit(f"FAIL: --cafile {cafile}: no such file")
        config.load_verify_locations(cafile=cafile)
    elif insecure:
        config.verify_mode = ssl.CERT_NONE
    return config


def parse_url(url: str) -> tuple[str, int, str, str]:
    """(host, port, authority, path) of https://HOST:PORT/path."""
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.hostname or not parsed.port:
        raise SystemExit(f"expected https://HOST:PORT/path, got {url}")
    return parsed.hostname, parsed.port, f"{parsed.hostname}:{parsed.port}", parsed.path or "/"


def open_client(url: str, cafile: str | None, insecure: bool = True):
    host, port, _, _ = parse_url(url)
    return connect(host, port, configuration=client_config(cafile, host, insecure),
                   create_protocol=H3Client, wait_connected=True)


def run(main) -> None:
    """Runs `main()` (a coroutine function); exit 0 on success, 1 with a message on Failure."""
    try:
        asyncio.run(main())
    except Failure as error:
        print(f"FAIL: {error}", file=sys.stderr)
        sys.exit(1)
    except (ConnectionError, asyncio.TimeoutError, OSError) as error:
        print(f"FAIL: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
