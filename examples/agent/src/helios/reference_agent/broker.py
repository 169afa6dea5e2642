"""The AI broker's routes on the Helios gateway, called with an AI token as `Authorization:
Bearer`: BuildPrompt and Invoke (the only broker routes this agent needs; an AI token can never
confirm, so the agent has no way to)."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from google.protobuf import json_format
from google.protobuf.message import Message

from helios.proto.ai_broker.v1 import ai_broker_pb2

__all__ = ["BrokerClient", "GatewayError"]

_BUILD_PROMPT = "/api/v1/ai/prompts:build"
_INVOKE = "/api/v1/ai/invoke"

M = TypeVar("M", bound=Message)


class GatewayError(Exception):
    """The gateway refused a call: HTTP `status`, gRPC-style `code` (PERMISSION_DENIED, ...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class BrokerClient:
    """Broker calls over `http` (an AsyncClient whose base_url is the gateway's origin) with the
    AI token `token`, which goes only into the Authorization header of each request."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self._http = http
        self._token = token

    async def build_prompt(
        self, user_text: str, prompt_name: str = "assistant", prompt_version: str = ""
    ) -> ai_broker_pb2.BuildPromptResponse:
        """The broker's system prompt `prompt_name` around `user_text`, and its hash."""
        body = {
            "prompt_name": prompt_name,
            "prompt_version": prompt_version,
            "user_text": user_text,
        }
        return await self._post(_BUILD_PROMPT, body, ai_broker_pb2.BuildPromptResponse())

    async def invoke(
        self, action: str, input: dict[str, Any], system_prompt_hash: str
    ) -> ai_broker_pb2.InvokeResponse:
        """Run the registered `action`; the reply holds its output or, for a dangerous action,
        the confirmation its human must give. `input` is sent as the JSON it is."""
        body = {"action": action, "input": input, "system_prompt_hash": system_prompt_hash}
        return await self._post(_INVOKE, body, ai_broker_pb2.InvokeResponse())

    async def _post(self, path: str, body: dict[str, Any], reply: M) -> M:
        """POST `body` as JSON (the model's input exactly as it wrote it) and parse the reply
        into `reply`; raises GatewayError for a refusal."""
        response = await self._http.post(
            path, json=body, headers={"authorization": f"Bearer {self._token}"}
        )
        document: Any = response.json() if response.content else {}
        if response.status_code >= 400:
            error = document.get("error", {}) if isinstance(document, dict) else {}
            raise GatewayError(
                response.status_code,
                str(error.get("code", "")),
                str(error.get("message", response.text)),
            )
        return json_format.ParseDict(document, reply, ignore_unknown_fields=True)
