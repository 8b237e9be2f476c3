"""uvicorn's httptools protocol with the deadlines it lacks.

uvicorn times out a keep-alive connection only after it has answered a request: a connection
that never sends anything, or sends its request line and headers a byte at a time (slowloris),
is kept for ever. Here:
- a connection idle before its first request is closed after ``timeout_keep_alive`` like any
  idle keep-alive connection;
- a request's line and headers must all arrive within ``TIMEOUT_HEADER_S`` of its first byte
  (an absolute deadline, so trickling bytes does not extend it), else 408 and close;
- headers larger than ``MAX_HEADER_BYTES`` get 431 and close;
- an answer the client stops reading (the socket's send buffer stays full for ``TIMEOUT_SEND_S``)
  is dropped with its connection, so a client that never reads cannot hold the answer's memory.
Stalled bodies are the ASGI middleware's job (api.limits). Used by ``python -m api.serve``; for
one process: ``uvicorn api.main:app --http api.protocol:DeadlineHttpToolsProtocol``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from api.settings import get_settings


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.timeout_header = settings.timeout_header_s
        self.max_header_bytes = settings.max_header_bytes
        self.timeout_send = settings.timeout_send_s
        self._send_deadline: asyncio.TimerHandle | None = None
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # raw bytes of a head that has not ended yet (it may never end)
        self._head_parsed = 0  # request line and header bytes the parser has seen
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_head()
        self._end_send_deadline()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_deadline is None:
            self._send_deadline = self.loop.call_later(self.timeout_send, self._send_timed_out)

    def resume_writing(self) -> None:
        self._end_send_deadline()
        super().resume_writing()

    def _end_send_deadline(self) -> None:
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None

    def _send_timed_out(self) -> None:
        self._send_deadline = None
        self.transport.abort()  # drops what is buffered; the answer's task sees the connection lost

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_deadline is not None:  # still inside a request's head after this chunk
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._refuse(431, f"request headers larger than {self.max_header_bytes} bytes")

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self._head_parsed += size
        if self._head_parsed > self.max_header_bytes:
            self._refuse(431, f"request headers larger than {self.max_header_bytes} bytes")
            raise ValueError("request head too large")  # stops the parser; uvicorn then answers nothing more

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # our own refusal stopped the parser: the client has its answer
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._end_head()
        self._head_bytes = self._head_parsed = 0
        self._head_deadline = self.loop.call_later(self.timeout_header, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._end_head()
        super().on_headers_complete()

    def _end_head(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        self._refuse(408, f"request headers not received within {self.timeout_header:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        self._end_head()
        if self.transport.is_closing():
            return
        self._refused = True
        body = json.dumps({"detail": detail}).encode()
        head = b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        self.transport.write(STATUS_LINE[status] + head + body)
        self.transport.close()
