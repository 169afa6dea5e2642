"""`python -m helios.keyvault [serve|migrate]`."""

from helios.kernel.cli import ServiceCommands, run_cli
from helios.keyvault.settings import KeyvaultSettings
from helios.keyvault.wiring import NAME, migrate_schema, wire

if __name__ == "__main__":
    raise SystemExit(
        run_cli(
            ServiceCommands(
                name=NAME, settings_type=KeyvaultSettings, wire=wire, migrate=migrate_schema
            )
        )
    )
