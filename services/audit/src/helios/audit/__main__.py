"""`python -m helios.audit [serve|migrate]`, and `python -m helios.audit verify ...` (see cli)."""

import sys

from helios.audit.cli import verify_main
from helios.audit.settings import AuditSettings
from helios.audit.wiring import NAME, migrate_schema, wire
from helios.kernel.cli import ServiceCommands, run_cli

if __name__ == "__main__":
    if sys.argv[1:2] == ["verify"]:  # its own arguments, and no service settings needed
        raise SystemExit(verify_main(sys.argv[2:], prog="python -m helios.audit verify"))
    raise SystemExit(
        run_cli(
            ServiceCommands(
                name=NAME, settings_type=AuditSettings, wire=wire, migrate=migrate_schema
            )
        )
    )
