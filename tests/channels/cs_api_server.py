"""A local stand-in for WeChat's customer-service message API that checks what it is sent.

It speaks the real wire format (token endpoint, `message/custom/send` with an access token),
so the app's wechatpy client is exercised end to end over loopback HTTP.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

ACCESS_TOKEN = "ACCESS_TOKEN_TEST"


@dataclass
class CustomerServiceApi:
    base_url: str
    sent: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    token_requests: int = 0


def _handler(api: CustomerServiceApi, app_id: str, secret: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _json(self, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            credentials_ok = query.get("appid") == [app_id] and query.get("secret") == [secret]
            grant_ok = query.get("grant_type") == ["client_credential"]
            if url.path == "/cgi-bin/token" and credentials_ok and grant_ok:
                api.token_requests += 1
                self._json({"access_token": ACCESS_TOKEN, "expires_in": 7200})
            else:
                api.rejected.append(self.path)
                self._json({"errcode": 40013, "errmsg": "invalid appid"})

        def do_POST(self) -> None:
            url = urlparse(self.path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            ok = (url.path == "/cgi-bin/message/custom/send"
                  and parse_qs(url.query).get("access_token") == [ACCESS_TOKEN]
                  and body.get("msgtype") == "text" and body.get("touser")
                  and isinstance(body.get("text"), dict) and body["text"].get("content"))
            if ok:
                api.sent.append(body)
                self._json({"errcode": 0, "errmsg": "ok"})
            else:
                api.rejected.append(self.path)
                self._json({"errcode": 40001, "errmsg": "invalid credential or body"})

    return Handler


@contextmanager
def customer_service_api(app_id: str, secret: str) -> Iterator[CustomerServiceApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    api = CustomerServiceApi(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(api, app_id, secret)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
