"""Helios reference AI agent: drives the AI broker through the gateway with an AI token.

    broker = BrokerClient(httpx.AsyncClient(base_url=gateway), ai_token)
    report = await Agent(broker, model).run("Send Ada an offer of 60000 EUR")
    if report.pending is not None:       # a dangerous action waits for its human
        print(report.pending.for_human())  # the agent never confirms: only the user can

`model` is any object with `async complete(prompt) -> ActionCall | FinalAnswer`; ScriptedModel
(scripted.py) is a fake one for tests.
"""

from helios.reference_agent.agent import (
    RESULT_PREFIX,
    ActionRecord,
    Agent,
    AgentReport,
    Outcome,
    PendingConfirmation,
    broker_results,
)
from helios.reference_agent.broker import BrokerClient, GatewayError
from helios.reference_agent.model import ActionCall, FinalAnswer, Model, ModelTurn
from helios.reference_agent.scripted import ScriptedModel, ScriptExhaustedError

__all__ = [
    "RESULT_PREFIX",
    "ActionCall",
    "ActionRecord",
    "Agent",
    "AgentReport",
    "BrokerClient",
    "FinalAnswer",
    "GatewayError",
    "Model",
    "ModelTurn",
    "Outcome",
    "PendingConfirmation",
    "ScriptExhaustedError",
    "ScriptedModel",
    "broker_results",
]
