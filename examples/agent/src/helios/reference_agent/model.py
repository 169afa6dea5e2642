"""What the agent asks of a language model: one turn at a time, an action call or a final answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ActionCall", "FinalAnswer", "Model", "ModelTurn"]


@dataclass(frozen=True, slots=True)
class ActionCall:
    """The model asks to run the registered action `action` with `input` (a JSON object)."""

    action: str
    input: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FinalAnswer:
    """The model is done; `text` is its answer to the user."""

    text: str


ModelTurn = ActionCall | FinalAnswer
"""One reply of the model."""


class Model(Protocol):
    """A language model behind whatever API it has. `prompt` is the whole transcript so far:
    the prompt BuildPrompt assembled, then one `broker-result:` line per action (agent.py)."""

    async def complete(self, prompt: str) -> ModelTurn:
        """The model's next turn; raises whatever its API raises."""
        ...
