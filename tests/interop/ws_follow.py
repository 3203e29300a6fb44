"""Reads Takt's event stream over a WebSocket with the `websockets` package (an implementation
Takt's server shares nothing with), the way a supplier's integration would.

    ws_follow.py URL TOKEN COUNT

Connects with the bearer token, reads COUNT events and prints each as one JSON line, then
closes. If the server refuses the handshake it prints `{"refused": STATUS, "body": ...}`; if it
closes first, `{"closed": CODE, "reason": ...}`. Gives up after 30 s either way.
"""

import asyncio
import json
import sys

import websockets


async def follow(url: str, token: str, count: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with websockets.connect(url, additional_headers=headers) as ws:
            for _ in range(count):
                try:
                    message = await ws.recv()
                except websockets.ConnectionClosed as closed:
                    rcvd = closed.rcvd
                    print(json.dumps({
                        "closed": rcvd.code if rcvd else None,
                        "reason": rcvd.reason if rcvd else None,
                    }), flush=True)
                    return
                event = json.loads(message)
                print(json.dumps(event), flush=True)
    except websockets.InvalidStatus as refused:
        response = refused.response
        body = response.body.decode("utf-8", "replace") if response.body else ""
        print(json.dumps({"refused": response.status_code, "body": body}), flush=True)


def main() -> None:
    url, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    asyncio.run(asyncio.wait_for(follow(url, token, count), timeout=30))


if __name__ == "__main__":
    main()
