#!/usr/bin/env python3
"""server.py: the WebSocket chat server of the flask-chat example.

    python3 server.py PORT [HOST]        (HOST: 127.0.0.1 unless given)

Every text message a client sends is sent to every connected client, the
sender included, as it came; binary messages are dropped. It knows nothing
about nicks or rooms: the page (static/chat.js) sends JSON like
{"type": "say", "nick": "ann", "text": "hi"} and shows what comes back.
Uses Debian's python3-websockets (10.x). Prints "listening on HOST:PORT"
once it accepts connections.
"""
import asyncio
import sys

import websockets

MAX_MESSAGE = 64 * 1024          # bytes; a larger message closes with 1009
CLIENTS = set()


async def chat(ws):
    CLIENTS.add(ws)
    print(f"open {ws.path} ({len(CLIENTS)} connected)", flush=True)
    try:
        async for message in ws:
            if isinstance(message, str):
                websockets.broadcast(CLIENTS, message)
    except websockets.ConnectionClosed:
        pass
    finally:
        CLIENTS.discard(ws)
        print(f"close ({len(CLIENTS)} connected)", flush=True)


async def main(host, port):
    async with websockets.serve(chat, host, port, max_size=MAX_MESSAGE):
        print(f"listening on {host}:{port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or not sys.argv[1].isdigit():
        print("usage: server.py PORT [HOST]", file=sys.stderr)
        sys.exit(2)
    try:
        asyncio.run(main(sys.argv[2] if len(sys.argv) == 3 else "127.0.0.1", int(sys.argv[1])))
    except KeyboardInterrupt:
        pass
