"""`python -m helios.ai_broker [serve|migrate]`."""

from helios.ai_broker.settings import AiBrokerSettings
from helios.ai_broker.wiring import NAME, migrate_schema, wire
from helios.kernel.cli import ServiceCommands, run_cli

if __name__ == "__main__":
    raise SystemExit(
        run_cli(
            ServiceCommands(
                name=NAME, settings_type=AiBrokerSettings, wire=wire, migrate=migrate_schema
            )
        )
    )
