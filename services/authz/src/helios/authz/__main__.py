"""`python -m helios.authz [serve|migrate]`."""

from helios.authz.wiring import NAME, wire
from helios.kernel.cli import ServiceCommands, run_cli
from helios.kernel.settings import GrpcSettings

if __name__ == "__main__":
    raise SystemExit(run_cli(ServiceCommands(name=NAME, settings_type=GrpcSettings, wire=wire)))
