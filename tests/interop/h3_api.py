#!/usr/bin/env python3
"""HTTP/3 REST API interop check (aioquic) for `ludus serve`.

    h3_api.py --url https://127.0.0.1:4433 [--cafile DATA_DIR/tls/cert.pem] [--username NAME]

On one QUIC connection:
  1. POST /api/auth/register with a JSON body (content-type and
     content-length): 201, a Bearer access token, a refresh token, the user;
  2. GET /api/players/me with the access token: 200, the same account;
  3. PUT /api/players/me (nickname, bio, country): 200, the new profile;
  4. GET /api/players/me again: the change is stored;
  5. GET /api/players/me without a token: 401 (answered on the shard).
Steps 1 to 4 are answered by storage workers, so each answer proves that a
deferred response found its way back through the shard's mailbox onto the
right request stream. Requests 2 and 5 are sent together to show two
answers of different origin (worker, shard) on concurrent streams.
Prints one JSON line; exits 0 on success, 1 with "FAIL: why" otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time

import h3util
from h3util import Failure


def send(client: h3util.H3Client, authority: str, method: str, path: str, *,
         token: str | None = None, body: dict | None = None) -> h3util.Response:
    """Starts a request (headers, then the JSON body if any, then FIN)."""
    extra = [(b"user-agent", b"ludus-h3-api-interop")]
    if token is not None:
        extra.append((b"authorization", f"Bearer {token}".encode()))
    data = b""
    if body is not None:
        data = json.dumps(body).encode()
        extra += [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    response = client.request(method, authority, path, extra=extra, end_stream=body is None)
    if body is not None:
        client.h3.send_data(response.stream_id, data, end_stream=True)
        client.transmit()
    response.started = time.perf_counter()
    return response


async def finish(client: h3util.H3Client, response: h3util.Response, what: str, timeout: float,
                 expected: int) -> dict:
    """Waits for the whole answer; checks its status and that it is JSON."""
    await client.wait_ended(response, timeout, what)
    if response.reset_code is not None:
        raise Failure(f"{what}: stream reset with code 0x{response.reset_code:x}")
    if response.status is None:
        ended = client.terminated.done() and client.terminated.result()
        raise Failure(f"{what}: no :status (connection ended: {ended})")
    response.elapsed_ms = round((time.perf_counter() - response.started) * 1000, 3)
    body = bytes(response.body)
    if response.status != expected:
        raise Failure(f"{what}: status {response.status}, expected {expected}; body {body[:300]!r}")
    content_type = response.headers.get(b"content-type", b"").decode()
    if not content_type.startswith("application/json"):
        raise Failure(f"{what}: content-type {content_type!r}")
    length = response.headers.get(b"content-length")
    if length is not None and int(length) != len(body):
        raise Failure(f"{what}: content-length {int(length)} but {len(body)} body bytes")
    if not response.headers.get(b"x-request-id"):
        raise Failure(f"{what}: no x-request-id")
    try:
        value = json.loads(body)
    except ValueError as error:
        raise Failure(f"{what}: body is not JSON: {body[:300]!r}") from error
    if not isinstance(value, dict):
        raise Failure(f"{what}: body is not a JSON object: {value!r}")
    return value


def expect(condition: bool, what: str, value) -> None:
    if not condition:
        raise Failure(f"{what}: {json.dumps(value)[:500]}")


async def main(args) -> dict:
    _, _, authority, _ = h3util.parse_url(args.url)
    username = args.username or f"h3_{secrets.token_hex(6)}"
    password = "correct horse battery staple"
    result: dict = {"url": args.url, "ok": False, "username": username, "requests": []}

    def record(method: str, path: str, response: h3util.Response) -> None:
        result["requests"].append({"method": method, "path": path, "status": response.status,
                                   "stream": response.stream_id, "ms": response.elapsed_ms})

    async with h3util.open_client(args.url, args.cafile) as client:
        await client.wait_settings(args.timeout)

        # 1. Register: a JSON body on the request stream, answered by a worker.
        register = send(client, authority, "POST", "/api/auth/register",
                        body={"username": username, "password": password})
        signed = await finish(client, register, "POST /api/auth/register", args.timeout, 201)
        record("POST", "/api/auth/register", register)
        expect(signed.get("token_type") == "Bearer", "register: token_type", signed)
        access, refresh = signed.get("access_token"), signed.get("refresh_token")
        expect(isinstance(access, str) and access.count(".") == 2, "register: access_token is a JWT", signed)
        expect(isinstance(refresh, str) and refresh, "register: refresh_token", signed)
        user = signed.get("user") or {}
        expect(user.get("username") == username and user.get("role") == "player", "register: user", signed)
        user_id = user.get("id")
        expect(isinstance(user_id, str) and user_id.isdigit(), "register: user.id", signed)
        result["user_id"] = user_id

        # 2 and 5 together: a worker's answer and the shard's own 401, on
        # concurrent streams; each must land on its own stream.
        me = send(client, authority, "GET", "/api/players/me", token=access)
        anonymous = send(client, authority, "GET", "/api/players/me")
        profile = await finish(client, me, "GET /api/players/me", args.timeout, 200)
        refused = await finish(client, anonymous, "GET /api/players/me (no token)", args.timeout, 401)
        record("GET", "/api/players/me", me)
        record("GET", "/api/players/me (no token)", anonymous)
        expect(profile.get("id") == user_id and profile.get("username") == username, "me: profile", profile)
        expect(profile.get("nickname") == username, "me: nickname defaults to the username", profile)
        expect(refused.get("error", {}).get("code") == "missing_token", "me without a token", refused)

        # 3. Edit the profile.
        update = {"nickname": "Héloïse ♠", "bio": "clears lines over HTTP/3", "country": "FR"}
        put = send(client, authority, "PUT", "/api/players/me", token=access, body=update)
        updated = await finish(client, put, "PUT /api/players/me", args.timeout, 200)
        record("PUT", "/api/players/me", put)
        for key, value in update.items():
            expect(updated.get(key) == value, f"put: {key}", updated)
        expect(updated.get("id") == user_id, "put: id", updated)

        # 4. Read it back: stored, not only echoed.
        again = send(client, authority, "GET", "/api/players/me", token=access)
        stored = await finish(client, again, "GET /api/players/me (after PUT)", args.timeout, 200)
        record("GET", "/api/players/me (after PUT)", again)
        for key, value in update.items():
            expect(stored.get(key) == value, f"stored: {key}", stored)

        if client.terminated.done():
            raise Failure(f"the connection ended early: {client.terminated.result()}")
        result["streams"] = len({request["stream"] for request in result["requests"]})
        client._quic.close(error_code=h3util.H3_NO_ERROR, reason_phrase="done")
        client.transmit()
    result["ok"] = True
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="https://127.0.0.1:PORT (the server's UDP address)")
    parser.add_argument("--cafile", help="the server's certificate (DATA_DIR/tls/cert.pem); else no verification")
    parser.add_argument("--username", help="the account to register (default: a random h3_... name)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
    args = parser.parse_args()
    if not args.url.rstrip("/").count("/") > 2:
        args.url = args.url.rstrip("/") + "/"

    async def go():
        result = await asyncio.wait_for(main(args), 60)
        print(json.dumps(result))

    h3util.run(go)


if __name__ == "__main__":
    cli()
