"""The agent loop: BuildPrompt once, then model turn -> Invoke -> result fed back, until the
model answers, a dangerous action waits for its human, or the gateway ends the run.

The transcript the model sees is the prompt BuildPrompt assembled (the broker's system prompt,
the user's request inside its delimited block) followed by one line per action:
`broker-result: <JSON object>` with `action`, `invocation_id` and `output`, or `action` and
`error` {`code`, `message`}. The JSON is ASCII-escaped, so an output can never start a line of
its own."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from helios.reference_agent.broker import BrokerClient, GatewayError
from helios.reference_agent.model import FinalAnswer, Model

__all__ = [
    "RESULT_PREFIX",
    "ActionRecord",
    "Agent",
    "AgentReport",
    "Outcome",
    "PendingConfirmation",
    "broker_results",
]

RESULT_PREFIX = "broker-result: "
# The AI token is expired or revoked, or its session's rate limit is reached: trying again
# within this run cannot help.
_STOPPING_CODES = frozenset({"UNAUTHENTICATED", "RESOURCE_EXHAUSTED"})


class Outcome(enum.StrEnum):
    """How a run ended."""

    ANSWERED = "answered"
    CONFIRMATION_REQUIRED = "confirmation_required"
    STOPPED = "stopped"
    STEP_LIMIT = "step_limit"


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One Invoke of the run: its output, or the refusal (`error_code`, `error_message`)."""

    action: str
    input: dict[str, Any]
    invocation_id: str = ""
    output: dict[str, Any] | None = None
    error_code: str = ""
    error_message: str = ""


@dataclass(frozen=True, slots=True)
class PendingConfirmation:
    """A dangerous action the broker parked: only the delegating human can confirm it (with a
    user session, presenting `confirmation_id` and `input_hash`) or reject it."""

    action: str
    invocation_id: str
    confirmation_id: str
    summary: str
    expires_at: str
    input_hash: str

    def for_human(self) -> str:
        """What to show the human: the broker's own summary (never the model's words) and the
        ids to confirm or reject with."""
        return (
            f"Your assistant asks to run {self.action}: {self.summary}\n"
            f"Confirm or reject it in Helios before {self.expires_at} (invocation "
            f"{self.invocation_id}, confirmation {self.confirmation_id}, input hash "
            f"{self.input_hash}). The assistant cannot confirm it for you."
        )


@dataclass(frozen=True, slots=True)
class AgentReport:
    """The end of a run: the model's answer (ANSWERED), the parked action (CONFIRMATION_REQUIRED),
    the refusal that ended it (STOPPED: `actions[-1]`), or STEP_LIMIT; every action on the way."""

    outcome: Outcome
    system_prompt_hash: str
    actions: tuple[ActionRecord, ...]
    answer: str = ""
    pending: PendingConfirmation | None = None


def broker_results(transcript: str) -> list[dict[str, Any]]:
    """The `broker-result:` objects of a transcript, oldest first."""
    return [
        json.loads(line.removeprefix(RESULT_PREFIX))
        for line in transcript.splitlines()
        if line.startswith(RESULT_PREFIX)
    ]


def _result_line(record: ActionRecord) -> str:
    body: dict[str, Any] = {"action": record.action}
    if record.error_code:
        body["error"] = {"code": record.error_code, "message": record.error_message}
    else:
        body |= {"invocation_id": record.invocation_id, "output": record.output}
    return f"\n{RESULT_PREFIX}{json.dumps(body, sort_keys=True)}"


class Agent:
    """Runs one request of the user to its end with `model`, acting only through `broker` (the
    AI token's routes: it can build prompts and invoke registered actions, nothing else)."""

    def __init__(
        self,
        broker: BrokerClient,
        model: Model,
        *,
        prompt_name: str = "assistant",
        max_actions: int = 8,
    ) -> None:
        self._broker = broker
        self._model = model
        self._prompt_name = prompt_name
        self._max_actions = max_actions

    async def run(self, request: str) -> AgentReport:
        """Build the prompt around `request`, then let the model act until it answers, a
        dangerous action needs confirmation (the run stops there), the gateway refuses the AI
        token or its rate (STOPPED) or `max_actions` actions ran. Other refusals are fed back to
        the model. Raises GatewayError if the prompt cannot be built."""
        built = await self._broker.build_prompt(request, self._prompt_name)
        transcript = built.prompt
        actions: list[ActionRecord] = []
        while True:
            turn = await self._model.complete(transcript)
            if isinstance(turn, FinalAnswer):
                return AgentReport(
                    Outcome.ANSWERED, built.system_prompt_hash, tuple(actions), answer=turn.text
                )
            if len(actions) >= self._max_actions:
                return AgentReport(Outcome.STEP_LIMIT, built.system_prompt_hash, tuple(actions))
            try:
                reply = await self._broker.invoke(turn.action, turn.input, built.system_prompt_hash)
            except GatewayError as refused:
                record = ActionRecord(
                    turn.action, turn.input, error_code=refused.code, error_message=refused.message
                )
                actions.append(record)
                if refused.code in _STOPPING_CODES:
                    return AgentReport(Outcome.STOPPED, built.system_prompt_hash, tuple(actions))
                transcript += _result_line(record)
                continue
            if reply.WhichOneof("result") == "confirmation_required":
                actions.append(ActionRecord(turn.action, turn.input, reply.invocation_id))
                parked = reply.confirmation_required
                pending = PendingConfirmation(
                    action=turn.action,
                    invocation_id=reply.invocation_id,
                    confirmation_id=parked.confirmation_id,
                    summary=parked.summary,
                    expires_at=parked.expires_at.ToJsonString(),
                    input_hash=reply.input_hash,
                )
                return AgentReport(
                    Outcome.CONFIRMATION_REQUIRED,
                    built.system_prompt_hash,
                    tuple(actions),
                    pending=pending,
                )
            output = json_format.MessageToDict(reply.output)
            record = ActionRecord(turn.action, turn.input, reply.invocation_id, output)
            actions.append(record)
            transcript += _result_line(record)
