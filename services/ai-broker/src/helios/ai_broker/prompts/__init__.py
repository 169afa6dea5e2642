"""The broker's system prompts (I6): text files shipped inside this package as
`<name>/v<N>.txt`, read with importlib.resources; the only source of system prompts (never the
database, never an RPC)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from helios.ai_broker.domain.prompts import (
    PROMPT_NAME,
    PROMPT_VERSION,
    SystemPrompt,
    validate_prompt_name,
    validate_prompt_version,
)
from helios.kernel.errors import NotFoundError

__all__ = ["load_system_prompt", "shipped_prompts"]


@cache
def shipped_prompts() -> dict[str, dict[int, SystemPrompt]]:
    """Every shipped prompt by name, then version number; read from the package once per
    process. Only folders named like a prompt holding files named `v<N>.txt` count."""
    catalog: dict[str, dict[int, SystemPrompt]] = {}
    for folder in files(__name__).iterdir():
        if not (folder.is_dir() and PROMPT_NAME.fullmatch(folder.name)):
            continue
        for entry in folder.iterdir():
            stem, dot, suffix = entry.name.rpartition(".")
            match = PROMPT_VERSION.fullmatch(stem)
            if match is None or (dot, suffix) != (".", "txt") or not entry.is_file():
                continue
            prompt = SystemPrompt.from_resource(folder.name, stem, entry.read_bytes())
            catalog.setdefault(folder.name, {})[int(match.group(1))] = prompt
    return catalog


def load_system_prompt(name: str, version: str = "") -> SystemPrompt:
    """The shipped prompt `name` at `version` (`v<N>`; empty: the newest). Raises
    InvalidArgumentError for a malformed name or version (so never a path) and NotFoundError
    for one the broker does not ship."""
    versions = shipped_prompts().get(validate_prompt_name(name))
    if versions is None:
        raise NotFoundError(f"the broker ships no system prompt named {name!r}")
    number = validate_prompt_version(version) if version else max(versions)
    if number not in versions:
        raise NotFoundError(f"system prompt {name!r} has no version {version!r}")
    return versions[number]
