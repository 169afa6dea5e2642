"""`python -m helios.authz [serve|migrate|seed-root]`."""

from helios.authz.settings import AuthzSettings
from helios.authz.wiring import NAME, migrate_schema, seed_root, wire
from helios.kernel.cli import ServiceCommands, run_cli

if __name__ == "__main__":
    raise SystemExit(
        run_cli(
            ServiceCommands(
                name=NAME,
                settings_type=AuthzSettings,
                wire=wire,
                migrate=migrate_schema,
                extra={"seed-root": seed_root},
            )
        )
    )
