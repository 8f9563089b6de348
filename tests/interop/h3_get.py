#!/usr/bin/env python3
"""HTTP/3 GET interop check (aioquic) for `ludus serve`.

    h3_get.py --url https://127.0.0.1:4433 [--cafile DATA_DIR/tls/cert.pem]

On one QUIC connection: GET /api/health (200, JSON {"status": "ok"}),
GET /index.html (200, text/html, the game client), GET /nope.html (404).
Prints one JSON line; exits 0 on success, 1 with "FAIL: why" otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import h3util
from h3util import Failure


async def get(client: h3util.H3Client, authority: str, path: str, timeout: float) -> h3util.Response:
    started = time.perf_counter()
    response = client.request("GET", authority, path)
    await client.wait_ended(response, timeout, f"GET {path}")
    if response.reset_code is not None:
        raise Failure(f"GET {path}: stream reset with code 0x{response.reset_code:x}")
    if response.status is None:
        raise Failure(f"GET {path}: no :status (connection ended: {client.terminated.done() and client.terminated.result()})")
    response.elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    return response


async def main(args) -> dict:
    _, _, authority, _ = h3util.parse_url(args.url)
    result: dict = {"url": args.url, "ok": False, "requests": []}
    async with h3util.open_client(args.url, args.cafile) as client:
        await client.wait_settings(args.timeout)

        health = await get(client, authority, "/api/health", args.timeout)
        result["requests"].append({"path": "/api/health", "status": health.status, "ms": health.elapsed_ms})
        if health.status != 200:
            raise Failure(f"GET /api/health: status {health.status}, body {bytes(health.body)[:200]!r}")
        try:
            body = json.loads(bytes(health.body))
        except ValueError as error:
            raise Failure(f"GET /api/health: body is not JSON: {bytes(health.body)[:200]!r}") from error
        if body.get("status") != "ok":
            raise Failure(f"GET /api/health: {body}")

        page = await get(client, authority, "/index.html", args.timeout)
        result["requests"].append({"path": "/index.html", "status": page.status, "ms": page.elapsed_ms,
                                   "bytes": len(page.body)})
        if page.status != 200:
            raise Failure(f"GET /index.html: status {page.status}")
        content_type = page.headers.get(b"content-type", b"").decode()
        if not content_type.startswith("text/html"):
            raise Failure(f"GET /index.html: content-type {content_type!r}")
        if b"<title>Ludus" not in page.body or b"app/main.js" not in page.body:
            raise Failure(f"GET /index.html: not the test page: {bytes(page.body)[:200]!r}")
        length = page.headers.get(b"content-length")
        if length is not None and int(length) != len(page.body):
            raise Failure(f"GET /index.html: content-length {int(length)} but {len(page.body)} body bytes")

        missing = await get(client, authority, "/nope.html", args.timeout)
        result["requests"].append({"path": "/nope.html", "status": missing.status, "ms": missing.elapsed_ms})
        if missing.status != 404:
            raise Failure(f"GET /nope.html: status {missing.status}, expected 404")

        client._quic.close(error_code=h3util.H3_NO_ERROR, reason_phrase="done")
        client.transmit()
    result["ok"] = True
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="https://127.0.0.1:PORT (the server's UDP address)")
    parser.add_argument("--cafile", help="the server's certificate (DATA_DIR/tls/cert.pem); else no verification")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per step")
    args = parser.parse_args()
    if not args.url.rstrip("/").count("/") > 2:
        args.url = args.url.rstrip("/") + "/"

    async def go():
        result = await asyncio.wait_for(main(args), 60)
        print(json.dumps(result))

    h3util.run(go)


if __name__ == "__main__":
    cli()
