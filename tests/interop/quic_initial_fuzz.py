#!/usr/bin/env python3
"""Truncated and corrupted copies of a real QUIC Initial, sent to a server.

    quic_initial_fuzz.py --server 127.0.0.1:4433 [--copies 300] [--seed 1]

aioquic builds a genuine client Initial (a TLS ClientHello for h3). The
script sends it once; when the server answers with a Retry (its default),
aioquic builds the second Initial, which carries the Retry token and so gets
past the server's address validation into packet decryption. Corrupted
copies of that Initial are then sent from the same socket: truncations,
flipped payload bytes (AEAD failures), flipped protected header bytes, bad
DCID lengths, huge token and length fields, wrong versions, junk appended to
corrupted copies. The genuine tokened Initial itself is never sent, so no
handshake can start: a correct server ends up holding no state for this
client at all (the caller checks /api/stats).

Prints one JSON line: {"retry": bool, "base_len": N, "sent": N,
"responses": N, "response_kinds": {...}}; exits 0 unless the set-up failed
(no answer to the genuine Initial).
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import ssl
import sys
import time

from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection


def kind(datagram: bytes) -> str:
    if not datagram:
        return "empty"
    first = datagram[0]
    if not first & 0x80:
        return "short"
    version = int.from_bytes(datagram[1:5], "big")
    if version == 0:
        return "version_negotiation"
    return {0: "initial", 1: "0rtt", 2: "handshake", 3: "retry"}[(first >> 4) & 0x3]


def header_end(packet: bytes) -> int:
    """Offset of the packet number in a long-header Initial (its protected part)."""
    pos = 5
    pos += 1 + packet[pos]          # DCID
    pos += 1 + packet[pos]          # SCID
    token_len, pos = quic_varint(packet, pos)
    pos += token_len
    _, pos = quic_varint(packet, pos)  # Length
    return pos


def quic_varint(buf: bytes, pos: int) -> tuple[int, int]:
    first = buf[pos]
    length = 1 << (first >> 6)
    value = first & 0x3F
    for i in range(1, length):
        value = (value << 8) | buf[pos + i]
    return value, pos + length


def corruptions(base: bytes, rng: random.Random, count: int, kinds: list[int]) -> list[bytes]:
    pn = header_end(base)
    length, _ = quic_varint(base, pn - 2)
    # The Initial packet may be followed by padding in the datagram: payload
    # corruption must land inside the packet itself.
    end = min(len(base), pn + length)
    dcid_len_at = 5
    out: list[bytes] = []
    for i in range(count):
        data = bytearray(base)
        choice = kinds[i % len(kinds)]
        if choice == 0:  # truncated anywhere
            data = data[:rng.randrange(1, len(data))]
        elif choice == 1:  # the whole packet, in a datagram under 1200 bytes: to be discarded
            data = data[:rng.randrange(end, 1200)] if end < 1200 else data[:rng.randrange(pn, end)]
        elif choice == 2:  # payload bytes flipped: AEAD must fail
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(pn + 4, end)
                data[at] ^= 1 << rng.randrange(8)
        elif choice == 3:  # protected first-byte bits / packet number flipped
            data[0] ^= rng.choice([0x01, 0x02, 0x04, 0x08, 0x0C])
            data[pn + rng.randrange(4)] ^= 0xFF
        elif choice == 4:  # DCID length beyond the maximum of 20
            data[dcid_len_at] = rng.randint(21, 255)
        elif choice == 5:  # version changed (negotiation) or zeroed
            data[1:5] = rng.choice([b"\x00\x00\x00\x00", b"\x1a\x2a\x3a\x4a", b"\xff\x00\x00\x1d",
                                    rng.randbytes(4)])
        elif choice == 6:  # Length field says more than the datagram holds
            length_at = pn - 2
            data[length_at:pn] = b"\x7f\xff"
        elif choice == 7:  # corrupted copy followed by junk (coalesced garbage)
            data[rng.randrange(pn + 4, end)] ^= 0x55
            data += rng.randbytes(rng.randint(1, 200))
        elif choice == 8:  # two corrupted copies coalesced in one datagram (over 1500: cut)
            data[rng.randrange(pn + 4, end)] ^= 0x10
            data = (data + data)[:1500]
        else:  # random bytes over the whole protected part
            data[pn:] = rng.randbytes(len(data) - pn)
        out.append(bytes(data))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True, help="HOST:PORT of the server's UDP socket")
    parser.add_argument("--copies", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", default="0,1,2,3,4,5,6,7,8,9", help="corruption kinds to use")
    args = parser.parse_args()
    kinds = [int(k) for k in args.kinds.split(",")]
    host, port = args.server.rsplit(":", 1)
    addr = (host, int(port))
    rng = random.Random(args.seed)

    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=host)
    config.verify_mode = ssl.CERT_NONE
    conn = QuicConnection(configuration=config)
    now = time.time()
    conn.connect(addr, now=now)
    first = [data for data, _ in conn.datagrams_to_send(now=now)]
    if not first:
        print("FAIL: aioquic produced no Initial", file=sys.stderr)
        return 1

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    sock.sendto(first[0], addr)
    try:
        answer, _ = sock.recvfrom(65536)
    except socket.timeout:
        print("FAIL: no answer to a genuine Initial within 2 s", file=sys.stderr)
        return 1
    retry = kind(answer) == "retry"
    base = first[0]
    if retry:
        conn.receive_datagram(answer, addr, now=time.time())
        second = [data for data, _ in conn.datagrams_to_send(now=time.time())]
        if second:
            base = second[0]
    else:
        # No Retry: the genuine Initial started a handshake; close it cleanly.
        conn.receive_datagram(answer, addr, now=time.time())
        conn.close(error_code=0, reason_phrase="fuzz")
        for data, _ in conn.datagrams_to_send(now=time.time()):
            sock.sendto(data, addr)

    responses: dict[str, int] = {}
    sock.setblocking(False)
    sent = 0
    for index, datagram in enumerate(corruptions(base, rng, args.copies, kinds)):
        sock.sendto(datagram, addr)
        sent += 1
        if index % 50 == 49:
            time.sleep(0.005)
        drain(sock, responses)
    deadline = time.time() + 0.3
    while time.time() < deadline:
        drain(sock, responses)
        time.sleep(0.02)
    print(json.dumps({"retry": retry, "base_len": len(base), "sent": sent,
                      "responses": sum(responses.values()), "response_kinds": responses}))
    return 0


def drain(sock: socket.socket, responses: dict[str, int]) -> None:
    while True:
        try:
            data, _ = sock.recvfrom(65536)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionRefusedError:
            responses["icmp_refused"] = responses.get("icmp_refused", 0) + 1
            return
        name = kind(data)
        responses[name] = responses.get(name, 0) + 1


if __name__ == "__main__":
    sys.exit(main())
