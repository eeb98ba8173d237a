"""Local sinks for the delivery benchmark, each run as its own process, and their own load test.

    python -m bench.sinks smtp    --port P --status FILE   # aiosmtpd, counts idempotency keys
    python -m bench.sinks webhook --port P --status FILE   # threaded HTTP/1.1 (keep-alive) server
    python -m bench.sinks load-smtp    --port P -n 20000 --clients 2
    python -m bench.sinks load-webhook --port P -n 20000 --clients 2

A sink counts messages and distinct idempotency keys (`X-Idempotency-Key` / `Idempotency-Key`)
and rewrites a small JSON status file every half second and when it gets SIGTERM, so the
benchmark can check that every delivery arrived exactly once. The `load-*` commands measure
the sink alone: `clients` processes, each sending `n / clients` messages over one kept-alive
connection, the way one delivery worker does.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import signal
import smtplib
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Tally:
    """Messages and idempotency keys seen; written to `path` as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: Counter[str] = Counter()
        self.messages = 0
        self.first: float | None = None
        self.last: float | None = None
        self.lock = threading.Lock()

    def add(self, key: str) -> None:
        with self.lock:
            now = time.time()
            self.first = self.first or now
            self.last = now
            self.messages += 1
            self.keys[key] += 1

    def write(self) -> None:
        with self.lock:
            self._write()

    def _write(self) -> None:
        if True:
            status = {
                "messages": self.messages,
                "distinct_keys": len(self.keys),
                "duplicates": self.messages - len(self.keys),
                "first": self.first,
                "last": self.last,
                "pid": os.getpid(),
            }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        tmp.replace(self.path)


def _header(raw: bytes, name: bytes) -> str:
    """A header's value from raw message bytes, without parsing the whole message."""
    start = raw.find(b"\n" + name + b":")
    if start < 0:
        start = 0 if raw.startswith(name + b":") else -1
        if start < 0:
            return ""
    else:
        start += 1
    end = raw.find(b"\n", start)
    return raw[start + len(name) + 1 : end if end > 0 else None].strip().decode("ascii", "replace")


def serve_smtp(port: int, status: Path) -> None:
    from aiosmtpd.smtp import SMTP

    tally = Tally(status)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            tally.add(_header(envelope.content, b"X-Idempotency-Key"))
            return "250 Message accepted"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Handler(), hostname="sink.local"), host="127.0.0.1", port=port
        )
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)

        async def flush() -> None:
            while True:
                tally.write()
                await asyncio.sleep(0.5)

        flusher = asyncio.create_task(flush())
        tally.write()
        await stop.wait()
        flusher.cancel()
        server.close()
        tally.write()

    asyncio.run(main())


def serve_webhook(port: int, status: Path) -> None:
    tally = Tally(status)
    answer = json.dumps({"errcode": 0, "errmsg": "ok"}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive when the client asks for it
        # Headers and body are two writes: without TCP_NODELAY, Nagle + delayed ACK stall
        # every kept-alive response by ~40 ms.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            tally.add(self.headers.get("Idempotency-Key", ""))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True

    def stop(*_: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def flush() -> None:
        while True:
            tally.write()
            time.sleep(0.5)

    threading.Thread(target=flush, daemon=True).start()
    tally.write()
    server.serve_forever(poll_interval=0.2)
    tally.write()


# Load (the sink alone) -------------------------------------------------------------------------

SUBJECT = "【期限提醒】(2026)BV0001人调字第0000001号 矛盾纠纷研判分流期限 2026-11-30 到期"
BODY = "案号：(2026)BV0001人调字第0000001号\n案件：批量测试纠纷1\n期限：矛盾纠纷研判分流期限"


def _smtp_client(port: int, n: int, offset: int) -> None:
    from email.message import EmailMessage

    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(offset, offset + n):
            msg = EmailMessage()
            msg["Subject"] = SUBJECT
            msg["From"] = "mediation@localhost"
            msg["To"] = "head@bench.example"
            msg["Message-ID"] = f"<notification-{i}@load.local>"
            msg["X-Idempotency-Key"] = f"load-{i}"
            msg.set_content(BODY)
            smtp.send_message(msg)


def _webhook_client(port: int, n: int, offset: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(offset, offset + n):
        body = json.dumps(
            {"msgtype": "text", "text": {"content": f"{SUBJECT}\n{BODY}"}, "idempotency_key": i},
            ensure_ascii=False,
        ).encode()
        conn.request(
            "POST",
            "/robot",
            body=body,
            headers={"Content-Type": "application/json", "Idempotency-Key": f"load-{i}"},
        )
        response = conn.getresponse()
        response.read()
    conn.close()


def load(kind: str, port: int, n: int, clients: int) -> dict[str, Any]:
    target = _smtp_client if kind == "smtp" else _webhook_client
    per = n // clients
    procs = [
        multiprocessing.Process(target=target, args=(port, per, i * per)) for i in range(clients)
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    took = time.perf_counter() - started
    return {
        "kind": kind,
        "messages": per * clients,
        "seconds": round(took, 3),
        "per_second": round(per * clients / took),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sinks")
    parser.add_argument("command", choices=["smtp", "webhook", "load-smtp", "load-webhook"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status", type=Path)
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "smtp":
        serve_smtp(args.port, args.status)
    elif args.command == "webhook":
        serve_webhook(args.port, args.status)
    else:
        print(json.dumps(load(args.command.split("-")[1], args.port, args.n, args.clients)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
