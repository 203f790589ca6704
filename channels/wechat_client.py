"""Sending a reply later, through WeChat's customer-service message API.

A passive reply must come within 5 s; a slower turn answers `success` at once and sends its
reply through this client instead. It is an interface so tests (and a staging WeChat proxy) can
point it at another base URL; the real one is wechatpy's `WeChatClient`.
"""

from __future__ import annotations

from typing import Any, Protocol

from wechatpy import WeChatClient


class CustomerServiceClient(Protocol):
    def send_text(self, openid: str, text: str) -> Any: ...


class _ConfigurableWeChatClient(WeChatClient):
    """wechatpy's client with the API base URL taken from settings (token URL included)."""

    def __init__(self, appid: str, secret: str, api_base: str) -> None:
        super().__init__(appid, secret, timeout=5)
        self.API_BASE_URL = api_base.rstrip("/") + "/cgi-bin/"

    def fetch_access_token(self) -> Any:
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


class WeChatCustomerServiceClient:
    """`message/custom/send` with a text message, through wechatpy (which caches the access token)."""

    def __init__(self, app_id: str, app_secret: str, api_base: str) -> None:
        self._client = _ConfigurableWeChatClient(app_id, app_secret, api_base)

    def send_text(self, openid: str, text: str) -> Any:
        return self._client.message.send_text(openid, text)
