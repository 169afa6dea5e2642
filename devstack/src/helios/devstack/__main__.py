"""`python -m helios.devstack up`: run the whole stack locally until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from helios.devstack.stack import Stack, StackOptions

_BANNER = """
Helios is up.
  gateway:   {url}
  demo org:  {org}
  admin:     {email}
  password:  {password}   (shown once; it is not stored anywhere in clear)
  platform root: {root_email} / {root_password}
  mail:      every mail identity sends is filed in {maildir}
  logs:      {logs}
Try:
  curl -si -c jar -H 'content-type: application/json' \\
       -d '{{"email":"{email}","password":"<password>"}}' {url}/api/auth/sign-in
  curl -s -b jar {url}/api/auth/session
Press Ctrl-C to stop.
"""


def main(argv: list[str] | None = None) -> int:
    """Parse the command and run it."""
    parser = argparse.ArgumentParser(prog="python -m helios.devstack")
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--port", type=int, default=8080, help="gateway HTTP port (0: any free)")
    args = parser.parse_args(argv)
    options = StackOptions(
        database_url=os.environ.get("HELIOS_DATABASE_URL", ""),
        nats_url=os.environ.get("HELIOS_NATS_URL", ""),
        http_port=args.port,
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stack = Stack(options)
    try:
        stack.start(progress=True)
    except RuntimeError as exc:
        print(f"helios: could not start: {exc}", file=sys.stderr)
        return 1
    creds = stack.demo_credentials
    root = stack.root_credentials
    print(
        _BANNER.format(
            url=stack.gateway_url,
            org=creds.get("org", "-"),
            email=creds.get("email", "-"),
            password=creds.get("password", "-"),
            root_email=root.get("email", "-"),
            root_password=root.get("password", "-"),
            maildir=stack.maildir,
            logs=stack.state / "logs",
        ),
        flush=True,
    )
    try:
        while not stop.wait(1):
            for name, process in stack.processes.items():
                if not process.running:
                    print(
                        f"helios: {name} stopped unexpectedly:\n{process.log_tail()}",
                        file=sys.stderr,
                    )
                    stop.set()
    finally:
        print("helios: stopping", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
