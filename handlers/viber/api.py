"""viberbot's `Api`, pointed at a configurable base URL, with timeouts, typed errors and quiet logs.

viberbot builds every URL from the `viber_bot_api_url` its `ApiRequestSender` is constructed with
(`Api.__init__` passes the module constant). `ViberApi` constructs its own request sender with the
configured URL instead, so nothing global is patched. Its calls are blocking `requests` calls: the
channel always runs them with `asyncio.to_thread`.
"""
from __future__ import annotations

import logging
from typing import Any

import requests
from viberbot import Api
from viberbot.api.api_request_sender import ApiRequestSender
from viberbot.api.bot_configuration import BotConfiguration
from viberbot.api.consts import VIBER_BOT_API_URL, VIBER_BOT_USER_AGENT
from viberbot.api.message_sender import MessageSender

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
# Viber's answer codes (https://developers.viber.com/docs/api/rest-bot-api/#error-codes).
GONE = {5: "receiver not registered", 6: "receiver not subscribed", 11: "receiver has no suitable device"}
REJECTED = {3: "bad data", 4: "missing data", 13: "api version not supported", 14: "incompatible with version"}
TOO_MANY_REQUESTS = 12
# viberbot logs whole payloads (text, receiver id, auth token) at debug and on errors: keep it quiet.
logging.getLogger("viber.bot.api").setLevel(logging.CRITICAL)


class ViberStatusError(Exception):
    """Viber answered HTTP 200 with a non-zero `status`."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(f"viber status {status}: {message}")
        self.status, self.status_message = status, message


class ViberHTTPError(Exception):
    """Viber answered an HTTP error; `status` is read by the delivery worker's reason_class."""

    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"viber http {status}")
        self.status, self.retry_after = status, retry_after


class _RequestSender(ApiRequestSender):
    """The same requests as viberbot's, through one session, with timeouts; nothing of them is logged."""

    def __init__(self, logger: logging.Logger, base_url: str, configuration: BotConfiguration,
                 session: requests.Session) -> None:
        super().__init__(logger, base_url.rstrip("/"), configuration, VIBER_BOT_USER_AGENT)
        self._session = session

    def post_request(self, endpoint: str, payload: str) -> dict[str, Any]:
        headers = {"User-Agent": self._user_agent, "Content-Type": "application/json",
                   "X-Viber-Auth-Token": self._bot_configuration.auth_token}
        response = self._session.post(f"{self._viber_bot_api_url}/{endpoint}", data=payload.encode(),
                                      headers=headers, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        if response.status_code >= 400:
            raise ViberHTTPError(response.status_code, _seconds(response.headers.get("Retry-After")))
        result = response.json()
        status = int(result.get("status", 0))
        if status != 0:
            raise ViberStatusError(status, str(result.get("status_message", "")))
        return result


class ViberApi(Api):
    def __init__(self, auth_token: str, name: str, base_url: str | None = None, avatar: str | None = None) -> None:
        super().__init__(BotConfiguration(auth_token, name, avatar))
        self._session = requests.Session()
        self._request_sender = _RequestSender(self._logger, base_url or VIBER_BOT_API_URL,
                                               self._bot_configuration, self._session)
        self._message_sender = MessageSender(self._logger, self._request_sender, self._bot_configuration)

    def send(self, receiver: str, message: Any) -> int:
        """Send one message; returns Viber's message token."""
        return self.send_messages(receiver, [message])[0]

    def close(self) -> None:
        self._session.close()


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
