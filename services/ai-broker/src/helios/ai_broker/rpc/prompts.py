"""Prompt RPC: BuildPrompt."""

from __future__ import annotations

from helios.ai_broker.rpc.context import Context
from helios.ai_broker.service.bundle import BrokerServices
from helios.kernel.context import current_call
from helios.proto.ai_broker.v1 import ai_broker_pb2

__all__ = ["PromptHandlers"]


class PromptHandlers:
    """Thin handler over PromptService."""

    _services: BrokerServices

    async def BuildPrompt(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.BuildPromptRequest, context: Context
    ) -> ai_broker_pb2.BuildPromptResponse:
        built = await self._services.prompts.build(
            request.prompt_name, request.prompt_version, request.user_text, current_call()
        )
        return ai_broker_pb2.BuildPromptResponse(
            prompt=built.prompt,
            system_prompt_hash=built.system.sha256,
            prompt_version=built.system.version,
            delimiter=built.delimiter,
        )
