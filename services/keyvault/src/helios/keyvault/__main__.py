"""`python -m helios.keyvault [serve|migrate]`."""

from helios.kernel.cli import ServiceCommands, run_cli
from helios.kernel.settings import GrpcSettings
from helios.keyvault.wiring import NAME, wire

if __name__ == "__main__":
    raise SystemExit(run_cli(ServiceCommands(name=NAME, settings_type=GrpcSettings, wire=wire)))
