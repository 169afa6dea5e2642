"""The local stack's SMTP sink: accepts every mail on 127.0.0.1 and files it in a Maildir.

`python -m helios.devstack.mail_sink` with HELIOS_MAIL_SINK_PORT and HELIOS_MAIL_SINK_DIR; stops
on SIGTERM or SIGINT. What a deployment's relay would receive, readable by tests and humans.
"""

from __future__ import annotations

import mailbox
import os
import signal
import sys
import threading
from collections.abc import Mapping
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox

__all__ = ["main", "read_maildir"]


def read_maildir(path: Path) -> list[EmailMessage]:
    """Every message filed in the Maildir at `path`, oldest first (empty before the first)."""
    if not (path / "cur").is_dir():
        return []
    box = mailbox.Maildir(path, create=False)
    parser = BytesParser(policy=default)
    found: list[tuple[float, EmailMessage]] = []
    for key, filed in box.iteritems():
        message = parser.parsebytes(box.get_bytes(key))
        found.append((filed.get_date(), message))
    found.sort(key=lambda pair: pair[0])
    return [message for _, message in found]


def main(env: Mapping[str, str]) -> int:
    """Serve until a signal arrives; exit status 2 when the settings are missing or bad."""
    port_text = env.get("HELIOS_MAIL_SINK_PORT", "")
    directory_text = env.get("HELIOS_MAIL_SINK_DIR", "")
    if not port_text.isdigit() or not directory_text:
        print(
            "HELIOS_MAIL_SINK_PORT (a port) and HELIOS_MAIL_SINK_DIR are required", file=sys.stderr
        )
        return 2
    port, directory = int(port_text), Path(directory_text)
    mailbox.Maildir(directory, create=True)  # makes tmp/, new/ and cur/ (mkdir alone would not)
    controller = Controller(Mailbox(directory), hostname="127.0.0.1", port=port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    controller.start()
    print(f"mail sink listening on 127.0.0.1:{port}, filing into {directory}", flush=True)
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(os.environ))
