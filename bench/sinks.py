"""Local sinks for the delivery benchmark, each run as its own process, and their own load test.

    python -m bench.sinks smtp    --port P --status FILE   # SMTP (pipelining), counts keys
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


class SmtpSink(asyncio.Protocol):
    """A minimal SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT),
    advertising PIPELINING (RFC 2920): every command line in a read is answered in one write.

    aiosmtpd, which the tests use, costs several times more CPU per message than the workers
    spend sending it; on two shared cores that would make the sink the benchmark's subject.
    """

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.buffer = b""
        self.in_data = False
        self.has_sender = False
        self.recipients = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(b"220 sink.local ESMTP bench sink\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out: list[bytes] = []
        while True:
            if self.in_data:
                if self.buffer.startswith(b".\r\n"):
                    end, body = 0, b""
                else:
                    end = self.buffer.find(b"\r\n.\r\n")
                    if end < 0:
                        break
                    body = self.buffer[:end]
                    end += 2
                self.buffer = self.buffer[end + 3 :]
                self.in_data = False
                self.has_sender, self.recipients = False, 0
                self.tally.add(_header(body, b"X-Idempotency-Key"))
                out.append(b"250 2.0.0 Message accepted\r\n")
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                break
            line, self.buffer = self.buffer[:line_end], self.buffer[line_end + 2 :]
            reply, close = self.command(line)
            out.append(reply)
            if close:
                self.transport.write(b"".join(out))
                self.transport.close()
                return
        if out:
            self.transport.write(b"".join(out))

    def command(self, line: bytes) -> tuple[bytes, bool]:
        verb = line[:4].upper()
        if verb == b"EHLO":
            return b"250-sink.local\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n", False
        if verb == b"HELO":
            return b"250 sink.local\r\n", False
        if verb == b"MAIL":
            self.has_sender, self.recipients = True, 0
            return b"250 2.1.0 OK\r\n", False
        if verb == b"RCPT":
            if not self.has_sender:
                return b"503 5.5.1 Error: need MAIL command\r\n", False
            self.recipients += 1
            return b"250 2.1.5 OK\r\n", False
        if verb == b"DATA":
            if not self.recipients:
                return b"503 5.5.1 Error: need RCPT command\r\n", False
            self.in_data = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n", False
        if verb == b"RSET":
            self.has_sender, self.recipients = False, 0
            return b"250 2.0.0 OK\r\n", False
        if verb == b"NOOP":
            return b"250 2.0.0 OK\r\n", False
        if verb == b"QUIT":
            return b"221 2.0.0 Bye\r\n", True
        return b"502 5.5.2 Error: command not recognized\r\n", False


def serve_smtp(port: int, status: Path) -> None:
    tally = Tally(status)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SmtpSink(tally), host="127.0.0.1", port=port, backlog=128
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
