#!/usr/bin/env python3
"""Hostile HTTP/3 and WebTransport input (aioquic) against `ludus serve`.

    h3_hostile.py --url https://127.0.0.1:4433/wt [--cafile DATA_DIR/tls/cert.pem]

Each case runs on its own QUIC connection and checks the server's answer
(RFC 9114, RFC 9297, the WebTransport draft, docs/PROTOCOL.md):

  connect_404            extended CONNECT to /nope -> 404; the connection serves on
  bad_origin_403         extended CONNECT from https://evil.example -> 403
  second_session         a second CONNECT while one session is open (server allows 1)
                         -> refused; the first session still answers Ping
  ping_before_hello      Ping as the first frame -> Error(unexpected_message) + Bye
  oversized_frame        a frame length prefix over MAX_FRAME_LEN -> Error(frame_too_large) + Bye
  datagram_no_session    datagram for a stream that is no session -> dropped; the session goes on
  unknown_uni_stream     a uni stream of a reserved type -> ignored; the connection serves on
  headers_on_control     HEADERS on the client's control stream -> H3_FRAME_UNEXPECTED
  second_control_stream  a second control stream -> H3_STREAM_CREATION_ERROR
  data_before_headers    DATA first on a request stream -> H3_FRAME_UNEXPECTED (connection or stream)

Prints one JSON line per case and a summary; exits 0 if all passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import FrameType, encode_frame

import h3util
import ludus_wire as wire
from h3util import Failure

H3_STREAM_CREATION_ERROR = 0x103
H3_FRAME_UNEXPECTED = 0x105
H3_ID_ERROR = 0x108
H3_MESSAGE_ERROR = 0x10E
H3_REQUEST_REJECTED = 0x10B


class Ctx:
    def __init__(self, args):
        self.args = args
        _, _, self.authority, self.path = h3util.parse_url(args.url)
        self.origin = args.origin or f"https://{self.authority}"
        self.timeout = args.timeout


async def session(ctx: Ctx, client: h3util.H3Client, hello: bool = True):
    await client.wait_settings(ctx.timeout)
    response = await client.open_session(ctx.authority, ctx.path, ctx.origin, ctx.timeout)
    if response.status != 200:
        raise Failure(f"CONNECT {ctx.path}: status {response.status} (reset {response.reset_code})")
    control = client.open_bidi(response.stream_id)
    if hello:
        client.send_stream(control.stream_id, wire.hello())
        message = await control.next_message(ctx.timeout)
        if message is None or message.code != wire.WELCOME:
            raise Failure(f"expected Welcome, got {message and (message.name, message.fields)}")
    return response.stream_id, control


async def expect_ping(client: h3util.H3Client, control: h3util.RawStream, ping_id: int, timeout: float) -> None:
    client.send_stream(control.stream_id, wire.ping(ping_id))
    while True:
        message = await control.next_message(timeout)
        if message is None:
            raise Failure(f"control stream ended instead of answering Ping {ping_id}")
        if message.code == wire.PONG and message.fields["id"] == ping_id:
            return
        if message.code in (wire.ERROR, wire.BYE):
            raise Failure(f"{message.name} {message.fields} instead of Pong {ping_id}")


async def expect_health(ctx: Ctx, client: h3util.H3Client) -> None:
    response = client.request("GET", ctx.authority, "/api/health")
    await client.wait_ended(response, ctx.timeout, "GET /api/health")
    if response.status != 200:
        raise Failure(f"GET /api/health afterwards: status {response.status} (reset {response.reset_code}, "
                      f"connection {client.terminated.done() and client.terminated.result()})")


async def expect_error_and_bye(ctx: Ctx, control: h3util.RawStream, code: int) -> dict:
    seen = []
    while True:
        message = await control.next_message(ctx.timeout)
        if message is None:
            break
        seen.append((message.name, message.fields))
        if message.code == wire.BYE:
            break
    names = [name for name, _ in seen]
    errors = [fields for name, fields in seen if name == "Error"]
    if "Bye" not in names or not errors or errors[0]["code"] != code:
        raise Failure(f"expected Error(code {code}) then Bye, got {seen} (stream ended {control.ended}, "
                      f"reset {control.reset_code})")
    return {"error": errors[0], "bye": seen[-1][1]}


async def expect_connection_error(client: h3util.H3Client, codes: tuple[int, ...], timeout: float) -> dict:
    terminated = await client.terminated_within(timeout)
    if terminated is None:
        raise Failure(f"connection still open after {timeout:.1f} s; expected error {[hex(c) for c in codes]}")
    code, _, reason = terminated
    if code not in codes:
        raise Failure(f"connection closed with 0x{code:x} ({reason!r}), expected {[hex(c) for c in codes]}")
    return {"connection_error": hex(code), "reason": reason}


# --- cases -------------------------------------------------------------------

async def connect_404(ctx: Ctx, client: h3util.H3Client) -> dict:
    await client.wait_settings(ctx.timeout)
    response = await client.open_session(ctx.authority, "/nope", ctx.origin, ctx.timeout)
    if response.status != 404:
        raise Failure(f"CONNECT /nope: status {response.status} (reset {response.reset_code}), expected 404")
    await expect_health(ctx, client)
    return {"status": response.status}


async def bad_origin_403(ctx: Ctx, client: h3util.H3Client) -> dict:
    await client.wait_settings(ctx.timeout)
    response = await client.open_session(ctx.authority, ctx.path, "https://evil.example", ctx.timeout)
    if response.status != 403:
        raise Failure(f"CONNECT from https://evil.example: status {response.status}, expected 403")
    return {"status": response.status}


async def second_session(ctx: Ctx, client: h3util.H3Client) -> dict:
    session_id, control = await session(ctx, client)
    settings = client.h3.received_settings or {}
    max_sessions = settings.get(h3util.SETTING_WEBTRANSPORT_MAX_SESSIONS, 1)
    response = await client.open_session(ctx.authority, ctx.path, ctx.origin, ctx.timeout)
    outcome = {"max_sessions": max_sessions, "status": response.status, "reset": response.reset_code}
    if max_sessions <= 1 and response.status == 200:
        raise Failure(f"a second session was accepted although WEBTRANSPORT_MAX_SESSIONS is {max_sessions}")
    await expect_ping(client, control, 7, ctx.timeout)
    return outcome


async def ping_before_hello(ctx: Ctx, client: h3util.H3Client) -> dict:
    _, control = await session(ctx, client, hello=False)
    client.send_stream(control.stream_id, wire.ping(1))
    return await expect_error_and_bye(ctx, control, wire.UNEXPECTED_MESSAGE)


async def oversized_frame(ctx: Ctx, client: h3util.H3Client) -> dict:
    _, control = await session(ctx, client)
    # Length prefix 0x1fffff (> 65536), then a few body bytes that never complete.
    client.send_stream(control.stream_id, bytes([0xFF, 0xFF, 0x7F]) + b"\x03" * 16)
    return await expect_error_and_bye(ctx, control, wire.FRAME_TOO_LARGE_CODE)


async def datagram_no_session(ctx: Ctx, client: h3util.H3Client) -> dict:
    _, control = await session(ctx, client)
    # Quarter stream id 100 = stream 400: a client bidi stream never opened.
    client._quic.send_datagram_frame(encode_uint_var(100) + wire.ping(99))
    client.transmit()
    await asyncio.sleep(0.1)
    await expect_ping(client, control, 8, ctx.timeout)
    return {"survived": True}


async def unknown_uni_stream(ctx: Ctx, client: h3util.H3Client) -> dict:
    await client.wait_settings(ctx.timeout)
    stream_id = client._quic.get_next_available_stream_id(is_unidirectional=True)
    # 0x21 is a reserved (grease) stream type: 0x1f * N + 0x21.
    client.send_stream(stream_id, encode_uint_var(0x21) + b"garbage" * 20, end=True)
    await asyncio.sleep(0.1)
    await expect_health(ctx, client)
    return {"survived": True}


async def headers_on_control(ctx: Ctx, client: h3util.H3Client) -> dict:
    await client.wait_settings(ctx.timeout)
    control_id = client.h3._local_control_stream_id
    # A HEADERS frame (QPACK prefix 00 00, then :method GET from the static table).
    client.send_stream(control_id, encode_frame(FrameType.HEADERS, b"\x00\x00\xd1"))
    return await expect_connection_error(client, (H3_FRAME_UNEXPECTED,), ctx.timeout)


async def second_control_stream(ctx: Ctx, client: h3util.H3Client) -> dict:
    await client.wait_settings(ctx.timeout)
    stream_id = client._quic.get_next_available_stream_id(is_unidirectional=True)
    client.send_stream(stream_id, encode_uint_var(0x00) + encode_frame(FrameType.SETTINGS, b""))
    return await expect_connection_error(client, (H3_STREAM_CREATION_ERROR,), ctx.timeout)


async def data_before_headers(ctx: Ctx, client: h3util.H3Client) -> dict:
    await client.wait_settings(ctx.timeout)
    stream_id = client._quic.get_next_available_stream_id()
    response = h3util.Response(stream_id)
    client.responses[stream_id] = response
    client.send_stream(stream_id, encode_frame(FrameType.DATA, b"hello"), end=True)
    terminated = await client.terminated_within(ctx.timeout)
    if terminated is not None:
        if terminated[0] not in (H3_FRAME_UNEXPECTED, H3_MESSAGE_ERROR):
            raise Failure(f"connection closed with 0x{terminated[0]:x}, expected H3_FRAME_UNEXPECTED")
        return {"connection_error": hex(terminated[0])}
    if response.reset_code in (H3_FRAME_UNEXPECTED, H3_MESSAGE_ERROR, H3_REQUEST_REJECTED):
        await expect_health(ctx, client)
        return {"stream_reset": hex(response.reset_code)}
    raise Failure(f"no error for DATA before HEADERS (status {response.status}, reset {response.reset_code})")


CASES = [connect_404, bad_origin_403, second_session, ping_before_hello, oversized_frame,
         datagram_no_session, unknown_uni_stream, headers_on_control, second_control_stream,
         data_before_headers]


async def run_case(ctx: Ctx, case) -> dict:
    try:
        async with h3util.open_client(ctx.args.url, ctx.args.cafile) as client:
            detail = await asyncio.wait_for(case(ctx, client), 15)
            if not client.terminated.done():
                client._quic.close(error_code=h3util.H3_NO_ERROR, reason_phrase="case done")
                client.transmit()
        return {"case": case.__name__, "ok": True, **detail}
    except Failure as error:
        return {"case": case.__name__, "ok": False, "error": str(error)}
    except (asyncio.TimeoutError, ConnectionError, OSError) as error:
        return {"case": case.__name__, "ok": False, "error": f"{type(error).__name__}: {error}"}


async def main(args) -> int:
    ctx = Ctx(args)
    chosen = [case for case in CASES if not args.only or case.__name__ in args.only.split(",")]
    results = [await run_case(ctx, case) for case in chosen]
    for result in results:
        print(json.dumps(result, default=str))
    failed = [r["case"] for r in results if not r["ok"]]
    print(f"h3_hostile: {len(results) - len(failed)} passed, {len(failed)} failed"
          + (f" ({', '.join(failed)})" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="https://127.0.0.1:PORT/wt")
    parser.add_argument("--cafile", help="the server's certificate (DATA_DIR/tls/cert.pem); else no verification")
    parser.add_argument("--origin", help="origin header (default https://HOST:PORT)")
    parser.add_argument("--only", help="comma-separated case names")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per step")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args)))


if __name__ == "__main__":
    cli()
