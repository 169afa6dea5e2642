"""`python -m helios.recruitment_example`: serve the example product service."""

from helios.kernel.cli import ServiceCommands, run_cli
from helios.recruitment_example.settings import RecruitmentSettings
from helios.recruitment_example.wiring import wire

if __name__ == "__main__":
    raise SystemExit(
        run_cli(
            ServiceCommands(
                name="recruitment_example", settings_type=RecruitmentSettings, wire=wire
            )
        )
    )
