"""A scripted stand-in for a language model: a fake, for tests and demonstrations only.

No model runs in this repository; ScriptedModel plays a fixed script so that the agent loop,
the broker and the gateway around it are exercised for real. Each step is a turn, or a function
of the transcript returning one (to use what an earlier action returned)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from helios.reference_agent.model import ModelTurn

__all__ = ["ScriptExhaustedError", "ScriptedModel", "Step"]

Step = ModelTurn | Callable[[str], ModelTurn]


class ScriptExhaustedError(Exception):
    """The agent asked for more turns than the script has."""


class ScriptedModel:
    """Plays `steps` in order; `prompts` records every transcript it was given."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self._steps = list(steps)
        self.prompts: list[str] = []

    async def complete(self, prompt: str) -> ModelTurn:
        """The next step of the script (called with the transcript when it is a function);
        raises ScriptExhaustedError past the end."""
        if len(self.prompts) >= len(self._steps):
            raise ScriptExhaustedError(f"the script has only {len(self._steps)} turns")
        step = self._steps[len(self.prompts)]
        self.prompts.append(prompt)
        return step(prompt) if callable(step) else step
