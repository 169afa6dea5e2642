"""`python -m helios.identity [serve|migrate|seed-demo]`."""

from helios.identity.seed import seed_demo
from helios.identity.settings import IdentitySettings
from helios.identity.wiring import NAME, migrate_schema, wire
from helios.kernel.cli import ServiceCommands, run_cli

if __name__ == "__main__":
    raise SystemExit(
        run_cli(
            ServiceCommands(
                name=NAME,
                settings_type=IdentitySettings,
                wire=wire,
                migrate=migrate_schema,
                extra={"seed-demo": seed_demo},
            )
        )
    )
