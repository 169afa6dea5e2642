"""`google.api.http` path templates: `/v1/orgs/{org_id}/items/{name=**}:verb` to a matcher."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PathTemplate"]

_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=([^}]*))?\}")


def _segment_pattern(pattern: str) -> str:
    parts = []
    for piece in pattern.split("/"):
        if piece == "**":
            parts.append(r"[^:]+")
        elif piece == "*":
            parts.append(r"[^/:]+")
        else:
            parts.append(re.escape(piece))
    return "/".join(parts)


@dataclass(frozen=True)
class PathTemplate:
    """A compiled template; `fields` are the request field paths bound by its variables."""

    template: str
    regex: re.Pattern[str]
    fields: tuple[str, ...]

    @classmethod
    def parse(cls, template: str) -> PathTemplate:
        """Compile; raises ValueError for a template that does not start with '/'."""
        if not template.startswith("/"):
            raise ValueError(f"path template must start with '/': {template!r}")
        fields: list[str] = []
        out: list[str] = []
        position = 0
        for match in _VARIABLE.finditer(template):
            out.append(re.escape(template[position : match.start()]))
            group = f"v{len(fields)}"
            fields.append(match.group(1))
            out.append(f"(?P<{group}>{_segment_pattern(match.group(2) or '*')})")
            position = match.end()
        out.append(re.escape(template[position:]))
        return cls(template, re.compile("^" + "".join(out) + "$"), tuple(fields))

    def match(self, path: str) -> dict[str, str] | None:
        """Field path -> raw value for a matching URL path, else None."""
        found = self.regex.match(path)
        if found is None:
            return None
        return {field: found.group(f"v{i}") for i, field in enumerate(self.fields)}

    @property
    def openapi_path(self) -> str:
        """The template in OpenAPI form (`{field}`; patterns and dots dropped from names)."""
        return _VARIABLE.sub(lambda m: "{" + m.group(1) + "}", self.template)
