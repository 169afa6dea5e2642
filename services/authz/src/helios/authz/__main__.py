"""`python -m helios.authz [serve|migrate]`."""

from helios.authz.wiring import NAME, migrate_schema, wire
from helios.kernel.cli import ServiceCommands, run_cli
from helios.kernel.settings import ServiceSettings

if __name__ == "__main__":
    raise SystemExit(
        run_cli(
            ServiceCommands(
                name=NAME, settings_type=ServiceSettings, wire=wire, migrate=migrate_schema
            )
        )
    )
