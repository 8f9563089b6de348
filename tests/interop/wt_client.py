#!/usr/bin/env python3
"""WebTransport interop client (aioquic) for `ludus serve`.

    wt_client.py --url https://127.0.0.1:4433/wt [--cafile DATA_DIR/tls/cert.pem]
                 [--origin http://127.0.0.1:8080] [--pings 10]

Opens a QUIC connection (HTTP/3, DATAGRAM extension), checks the server's
SETTINGS, opens a WebTransport session with the extended CONNECT, opens the
control stream, completes Hello/Welcome, measures Ping/Pong round trips on
the stream and in datagrams, says Bye and closes the session. The frames are
encoded by tests/interop/ludus_wire.py, written from docs/PROTOCOL.md alone.

Prints one JSON line with the results; exits 0 on success, 1 with "FAIL: why"
otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import h3util
import ludus_wire as wire
from h3util import Failure


def summary(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    return {"count": len(ordered), "min": round(ordered[0], 3), "p50": round(statistics.median(ordered), 3),
            "max": round(ordered[-1], 3)}


async def stream_ping(client: h3util.H3Client, control: h3util.RawStream, ping_id: int, timeout: float) -> float:
    t0 = time.perf_counter_ns()
    client.send_stream(control.stream_id, wire.ping(ping_id))
    while True:
        message = await control.next_message(timeout)
        if message is None:
            raise Failure(f"control stream ended while waiting for Pong {ping_id} (reset {control.reset_code})")
        if message.code == wire.PONG and message.fields["id"] == ping_id:
            return wire.rtt_ms(message.fields, t0, time.perf_counter_ns())
        check_not_closing(message, f"Pong {ping_id}")


def check_not_closing(message: wire.Message, waiting_for: str) -> None:
    if message.code in (wire.ERROR, wire.BYE):
        raise Failure(f"server sent {message.name} {message.fields} while we waited for {waiting_for}")


async def datagram_ping(client: h3util.H3Client, session_id: int, control: h3util.RawStream, ping_id: int,
                        timeout: float) -> tuple[float, str] | None:
    """RTT and the path the Pong took ('datagram' or 'stream'); None if lost."""
    t0 = time.perf_counter_ns()
    client.send_datagram(session_id, wire.ping(ping_id))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        # A Pong may come back in a datagram or on the control stream.
        body = control.frames.next_body()
        if body is not None:
            message = wire.parse_body(body)
            if message.code == wire.PONG and message.fields["id"] == ping_id:
                return wire.rtt_ms(message.fields, t0, time.perf_counter_ns()), "stream"
            check_not_closing(message, f"datagram Pong {ping_id}")
            continue
        if control.ended or control.reset_code is not None:
            raise Failure(f"control stream ended while waiting for datagram Pong {ping_id}")
        if client.datagrams.empty():
            # Wake on whichever comes first: stream bytes or a datagram.
            control.changed.clear()
            stream_wait = asyncio.ensure_future(control.changed.wait())
            datagram_wait = asyncio.ensure_future(client.datagram_arrived.wait())
            await asyncio.wait({stream_wait, datagram_wait}, timeout=max(0.0, deadline - loop.time()),
                               return_when=asyncio.FIRST_COMPLETED)
            for waiter in (stream_wait, datagram_wait):
                waiter.cancel()
            if client.datagrams.empty():
                continue
        client.datagram_arrived.clear()
        stream_id, payload = client.datagrams.get_nowait()
        t3 = time.perf_counter_ns()
        if stream_id != session_id:
            raise Failure(f"datagram for session {stream_id}, ours is {session_id}")
        for datagram_body in wire.split_frames(payload):
            message = wire.parse_body(datagram_body)
            if message.code == wire.PONG and message.fields["id"] == ping_id:
                return wire.rtt_ms(message.fields, t0, t3), "datagram"
    return None


def capsules(data: bytes) -> list[tuple[int, bytes]]:
    """(type, payload) of the capsules in `data` (QUIC varints, RFC 9297)."""
    out, pos = [], 0
    while pos < len(data):
        try:
            kind, pos = quic_varint(data, pos)
            length, pos = quic_varint(data, pos)
        except IndexError:
            break
        out.append((kind, data[pos:pos + length]))
        pos += length
    return out


def quic_varint(buf: bytes, pos: int) -> tuple[int, int]:
    first = buf[pos]
    length = 1 << (first >> 6)
    value = first & 0x3F
    for i in range(1, length):
        value = (value << 8) | buf[pos + i]
    return value, pos + length


async def drain_check(client: h3util.H3Client, session_id: int, control: h3util.RawStream,
                      connect: h3util.Response) -> dict:
    """Says READY, then waits (up to 20 s) for the server's drain: Bye(502) on
    the control stream, then the session's end (CLOSE_WEBTRANSPORT_SESSION,
    the CONNECT stream finished or reset, or the connection closed)."""
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    bye = None
    while bye is None:
        message = await control.next_message(max(0.1, deadline - loop.time()))
        if message is None:
            raise Failure(f"control stream ended without Bye (reset {control.reset_code})")
        if message.code == wire.BYE:
            bye = message.fields
    if bye["code"] != wire.SERVER_DRAINING:
        raise Failure(f"drain Bye has code {bye['code']}, expected {wire.SERVER_DRAINING}: {bye}")
    ended = None
    while ended is None and loop.time() < deadline:
        close = [payload for kind, payload in capsules(bytes(connect.body))
                 if kind == h3util.CLOSE_WEBTRANSPORT_SESSION]
        if close:
            ended = {"close_capsule_code": int.from_bytes(close[0][:4], "big"), "reason": close[0][4:].decode(errors="replace")}
        elif connect.reset_code is not None:
            ended = {"connect_stream_reset": connect.reset_code}
        elif connect.ended.is_set():
            ended = {"connect_stream_finished": True}
        elif client.terminated.done():
            ended = {"connection_closed": list(client.terminated.result())}
        else:
            await asyncio.sleep(0.02)
    if ended is None:
        raise Failure("the session was not closed after the drain Bye")
    return {"bye": bye, **ended}


async def main(args) -> dict:
    wire.self_check()
    host, port, authority, path = h3util.parse_url(args.url)
    origin = args.origin or f"https://{authority}"
    result: dict = {"url": args.url, "ok": False}
    started = time.perf_counter()
    async with h3util.open_client(args.url, args.cafile) as client:
        result["handshake_ms"] = round((time.perf_counter() - started) * 1000, 3)
        settings = await client.wait_settings(args.timeout)
        result["settings"] = {hex(k): v for k, v in settings.items()}
        if settings.get(h3util.SETTING_ENABLE_CONNECT_PROTOCOL) != 1:
            raise Failure(f"server SETTINGS lack ENABLE_CONNECT_PROTOCOL=1: {result['settings']}")
        if settings.get(h3util.SETTING_H3_DATAGRAM) != 1:
            raise Failure(f"server SETTINGS lack H3_DATAGRAM=1: {result['settings']}")
        if not (settings.get(h3util.SETTING_ENABLE_WEBTRANSPORT) or settings.get(h3util.SETTING_WEBTRANSPORT_MAX_SESSIONS)):
            raise Failure(f"server SETTINGS advertise no WebTransport: {result['settings']}")

        response = await client.open_session(authority, path, origin, args.timeout)
        if response.reset_code is not None:
            raise Failure(f"CONNECT {path}: stream reset with code 0x{response.reset_code:x}")
        if response.status != 200:
            raise Failure(f"CONNECT {path}: status {response.status}, headers {response.headers}")
        session_id = response.stream_id
        result["session_ready_ms"] = round((time.perf_counter() - started) * 1000, 3)

        control = client.open_bidi(session_id)
        client.send_stream(control.stream_id, wire.hello(nickname=args.nickname))
        message = await control.next_message(args.timeout)
        if message is None:
            raise Failure(f"control stream ended before Welcome (reset {control.reset_code})")
        if message.code != wire.WELCOME:
            raise Failure(f"expected Welcome, got {message.name} {message.fields}")
        welcome = message.fields
        if welcome["version"] != wire.PROTOCOL_VERSION:
            raise Failure(f"Welcome.version {welcome['version']}, expected {wire.PROTOCOL_VERSION}")
        if welcome["player_id"] == 0:
            raise Failure("Welcome.player_id is 0")
        if not welcome["capabilities"] & wire.CAP_DATAGRAMS:
            raise Failure(f"Welcome.capabilities 0x{welcome['capabilities']:x} lack CAP_DATAGRAMS on WebTransport")
        if args.nickname and welcome["nickname"] != args.nickname:
            raise Failure(f"Welcome.nickname {welcome['nickname']!r}, asked for {args.nickname!r}")
        result["welcome"] = welcome

        if args.drain_check:
            result["drain"] = await drain_check(client, session_id, control, response)
            result["ok"] = True
            return result

        for i in range(args.warmup):
            await stream_ping(client, control, 900 + i, args.timeout)
        rtts = [await stream_ping(client, control, 1000 + i, args.timeout) for i in range(args.pings)]
        result["rtts_ms"] = [round(v, 3) for v in rtts]

        dgram_rtts: list[float] = []
        paths = {"datagram": 0, "stream": 0}
        lost = 0
        attempt = 0
        while len(dgram_rtts) < args.pings and attempt < args.pings * 3:
            attempt += 1
            answer = await datagram_ping(client, session_id, control, 5000 + attempt, 1.0)
            if answer is None:
                lost += 1
                continue
            dgram_rtts.append(answer[0])
            paths[answer[1]] += 1
        result["datagram_rtts_ms"] = [round(v, 3) for v in dgram_rtts]
        result["datagram_lost"] = lost
        result["datagram_pong_paths"] = paths
        result["summary"] = {"stream": summary(rtts), "datagram": summary(dgram_rtts)}
        if not dgram_rtts:
            raise Failure(f"no datagram Ping was answered ({lost} sent)")

        # Bye, then the session close capsule; the server should end the
        # control stream (or the session) soon after.
        client.send_stream(control.stream_id, wire.bye(0, "interop done"), end=True)
        client.close_session(session_id, 0, "done")
        await asyncio.sleep(0.05)
        terminated = client.terminated.result() if client.terminated.done() else None
        if terminated is not None and terminated[0] not in (0, h3util.H3_NO_ERROR):
            raise Failure(f"server closed the connection with error 0x{terminated[0]:x}: {terminated[2]}")
        client._quic.close(error_code=h3util.H3_NO_ERROR, reason_phrase="done")
        client.transmit()
    result["ok"] = True
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="https://127.0.0.1:PORT/wt")
    parser.add_argument("--cafile", help="the server's certificate (DATA_DIR/tls/cert.pem); else no verification")
    parser.add_argument("--origin", help="origin header (default https://HOST:PORT)")
    parser.add_argument("--nickname", default="interop-py")
    parser.add_argument("--pings", type=int, default=10)
    parser.add_argument("--drain-check", action="store_true",
                        help="after Welcome print READY and expect the server's drain (Bye 502, session closed)")
    parser.add_argument("--warmup", type=int, default=3, help="uncounted stream pings first")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per step")
    args = parser.parse_args()

    async def go():
        result = await asyncio.wait_for(main(args), 60)
        print(json.dumps(result))

    h3util.run(go)


if __name__ == "__main__":
    cli()
