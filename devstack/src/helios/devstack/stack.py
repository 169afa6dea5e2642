"""The whole Helios stack on one machine: PostgreSQL, NATS, dev PKI, migrations, six processes."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import grpc
import httpx
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from helios.devstack.mail_sink import read_maildir
from helios.devstack.processes import ManagedProcess, run_once
from helios.kernel.clients import secure_channel
from helios.kernel.principal import write_keypair
from helios.kernel.testing.servers import ThrowawayNats, ThrowawayPostgres, free_port
from helios.kernel.tls import CertFiles, ensure_dev_pki, write_secret

__all__ = ["GRPC_SERVICES", "Stack", "StackOptions"]

# (identity, python module, database role or "" when it has no schema yet)
GRPC_SERVICES = [
    ("identity", "helios.identity", "helios_identity"),
    ("authz", "helios.authz", "helios_authz"),
    ("ai-broker", "helios.ai_broker", "helios_ai_broker"),
    ("audit", "helios.audit", "helios_audit"),
    ("keyvault", "helios.keyvault", "helios_keyvault"),
]
_PRODUCT_EXAMPLE = "recruitment"
_CHEAP_ARGON2 = {"time_cost": "1", "memory_kib": "8192", "parallelism": "1"}


def _target_variable(service: str) -> str:
    return f"HELIOS_{service.replace('-', '_').upper()}_TARGET"


@dataclass
class StackOptions:
    """How to run: an existing database / NATS, or throwaway ones; cheap hashing for tests;
    `product_example` also runs the example product service `recruitment` (examples/recruitment:
    a product service of authz, an action target of the AI broker)."""

    database_url: str = ""
    nats_url: str = ""
    http_port: int = 0
    cheap_argon2: bool = False
    seed_demo: bool = True
    log_level: str = "INFO"
    product_example: bool = False
    otlp_endpoint: str = ""
    """Every process exports its spans over plaintext OTLP/gRPC here (e.g. a TraceCollector's
    endpoint), batched every 200 ms; empty: no export."""


@dataclass
class Stack:
    """Start with `start()`, stop with `stop()`; the state dir (keys, logs) goes with it."""

    options: StackOptions
    state: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="helios-stack-")))
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    demo_credentials: dict[str, str] = field(default_factory=dict)
    root_credentials: dict[str, str] = field(default_factory=dict)
    database_url: str = ""
    nats_url: str = ""
    postgres: ThrowawayPostgres | None = None
    nats: ThrowawayNats | None = None

    @property
    def gateway_url(self) -> str:
        """Where the HTTP gateway listens."""
        return f"http://localhost:{self.ports['gateway']}"

    def certs(self, identity: str) -> CertFiles:
        """The mTLS files of one identity (services, `devstack`)."""
        pki = self.state / "pki"
        return CertFiles(
            ca=pki / "ca.pem", cert=pki / f"{identity}.pem", key=pki / f"{identity}.key"
        )

    def start(self, progress: bool = False) -> Stack:
        """Bring everything up and wait until all six processes are ready; on failure stop what
        started and raise RuntimeError with the failing process's log."""
        try:
            self._start(progress)
        except BaseException:
            self.stop()
            raise
        return self

    def _say(self, progress: bool, text: str) -> None:
        if progress:
            print(f"helios: {text}", flush=True)

    def _start(self, progress: bool) -> None:
        self._say(progress, "starting PostgreSQL and NATS")
        self.database_url = self.options.database_url or self._throwaway_database()
        if self.options.nats_url:
            self.nats_url = self.options.nats_url
        else:
            self.nats = ThrowawayNats().start()
            self.nats_url = self.nats.url
        (self.state / "logs").mkdir(parents=True, exist_ok=True)
        ensure_dev_pki(
            self.state / "pki",
            [name for name, _, _ in GRPC_SERVICES]
            + ["gateway", "devstack"]
            + ([_PRODUCT_EXAMPLE] if self.options.product_example else []),
        )
        write_keypair(self.state / "principal.key", self.state / "principal.pub")
        write_keypair(self.state / "ai-principal.key", self.state / "ai-principal.pub")
        write_secret(self.state / "gateway-cookie.key", secrets.token_bytes(32))
        self.ports["mail"] = free_port()
        self._spawn(
            "mail",
            "helios.devstack.mail_sink",
            {
                "HELIOS_MAIL_SINK_PORT": str(self.ports["mail"]),
                "HELIOS_MAIL_SINK_DIR": str(self.maildir),
            },
        )
        self._say(progress, "migrating the database")
        for name, module, role in GRPC_SERVICES:
            if role:
                run_once(module, ["migrate"], self._service_env(name, role))
        run_once("helios.gateway", ["migrate"], self._gateway_env())
        self._say(progress, "starting identity, authz, ai-broker, audit, keyvault")
        # every port first: each service's environment names authz's (HELIOS_AUTHZ_TARGET),
        # audit's and identity's also keyvault's (HELIOS_KEYVAULT_TARGET)
        for name, _, _ in GRPC_SERVICES:
            self.ports[name] = free_port()
        self.ports["gateway"] = self.options.http_port or free_port()
        if self.options.product_example:
            self.ports[_PRODUCT_EXAMPLE] = free_port()
        for name, module, role in GRPC_SERVICES:
            self._spawn(name, module, self._service_env(name, role))
        asyncio.run(self._wait_grpc([name for name, _, _ in GRPC_SERVICES]))
        if self.options.product_example:
            self._say(progress, "starting the example product service")
            self._spawn(_PRODUCT_EXAMPLE, "helios.recruitment_example", self._example_env())
            asyncio.run(self._wait_grpc([_PRODUCT_EXAMPLE]))
        self._say(progress, "starting the gateway")
        self._spawn("gateway", "helios.gateway", self._gateway_env())
        self._wait_http("gateway", f"{self.gateway_url}/readyz")
        if self.options.seed_demo:
            self._say(progress, "seeding the demo org")
            out = run_once(
                "helios.identity", ["seed-demo"], self._service_env("identity", "helios_identity")
            )
            seeded = json.loads(out.strip().splitlines()[-1])
            self.root_credentials = seeded.pop("root")
            self.demo_credentials = seeded
            run_once(
                "helios.authz",
                ["seed-root"],
                {
                    **self._service_env("authz", "helios_authz"),
                    "HELIOS_ROOT_USER_ID": self.root_credentials["user_id"],
                },
            )

    def _throwaway_database(self) -> str:
        self.postgres = ThrowawayPostgres().start()
        with psycopg.connect(self.postgres.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE helios")
        return self.postgres.url.rsplit("/", 1)[0] + "/helios"

    def _common_env(self, identity: str) -> dict[str, str]:
        certs = self.certs(identity)
        return {
            "HELIOS_TLS_CA_FILE": str(certs.ca),
            "HELIOS_TLS_CERT_FILE": str(certs.cert),
            "HELIOS_TLS_KEY_FILE": str(certs.key),
            "HELIOS_PRINCIPAL_PUBLIC_KEY_FILE": str(self.state / "principal.pub"),
            "HELIOS_AI_PRINCIPAL_PUBLIC_KEY_FILE": str(self.state / "ai-principal.pub"),
            "HELIOS_LOG_LEVEL": self.options.log_level,
            **self._tracing_env(),
        }

    def _tracing_env(self) -> dict[str, str]:
        if not self.options.otlp_endpoint:
            return {}
        return {
            "HELIOS_OTEL_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.options.otlp_endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }

    def _service_env(self, name: str, role: str) -> dict[str, str]:
        env = {
            **self._common_env(name),
            "HELIOS_GRPC_HOST": "127.0.0.1",
            "HELIOS_GRPC_PORT": str(self.ports.get(name, 0)),
            "HELIOS_DATABASE_URL": self.database_url,
            "HELIOS_DATABASE_ROLE": role,
            "HELIOS_NATS_URL": self.nats_url,
            _target_variable("authz"): f"localhost:{self.ports.get('authz', 0)}",
        }
        if name == "keyvault":
            env["HELIOS_SEAL_STATE_DIR"] = str(self.state / "keyvault")
        if name == "ai-broker":
            env["HELIOS_PRINCIPAL_SIGNING_KEY_FILE"] = str(self.state / "ai-principal.key")
        if self.options.product_example and name == "authz":
            env["HELIOS_PRODUCT_SERVICES"] = json.dumps([_PRODUCT_EXAMPLE])
        if self.options.product_example and name == "ai-broker":
            env["HELIOS_ACTION_TARGETS"] = json.dumps(
                {_PRODUCT_EXAMPLE: f"localhost:{self.ports.get(_PRODUCT_EXAMPLE, 0)}"}
            )
        if name in ("audit", "identity"):
            env[_target_variable("keyvault")] = f"localhost:{self.ports.get('keyvault', 0)}"
        if name == "identity":
            env["HELIOS_PRINCIPAL_SIGNING_KEY_FILE"] = str(self.state / "principal.key")
            env["HELIOS_SMTP_HOST"] = "127.0.0.1"
            env["HELIOS_SMTP_PORT"] = str(self.ports.get("mail", 0))
            env["HELIOS_SMTP_STARTTLS"] = "false"
            env["HELIOS_PUBLIC_URL"] = f"http://localhost:{self.ports.get('gateway', 0)}"
            if self.options.cheap_argon2:
                env.update({f"HELIOS_ARGON2_{k.upper()}": v for k, v in _CHEAP_ARGON2.items()})
        return env

    def _example_env(self) -> dict[str, str]:
        return {
            **self._common_env(_PRODUCT_EXAMPLE),
            "HELIOS_GRPC_HOST": "127.0.0.1",
            "HELIOS_GRPC_PORT": str(self.ports.get(_PRODUCT_EXAMPLE, 0)),
            _target_variable("authz"): f"localhost:{self.ports.get('authz', 0)}",
            _target_variable("ai-broker"): f"localhost:{self.ports.get('ai-broker', 0)}",
        }

    @property
    def maildir(self) -> Path:
        """Where the SMTP sink files every mail identity sends."""
        return self.state / "mail"

    def mails(self, to: str) -> list[EmailMessage]:
        """Every mail delivered to `to` so far, oldest first."""
        wanted = to.lower()
        return [m for m in read_maildir(self.maildir) if wanted in str(m["To"]).lower()]

    def wait_for_mail(
        self, to: str, subject_contains: str = "", timeout: float = 20.0
    ) -> EmailMessage:
        """The newest mail to `to` whose subject contains `subject_contains`, waiting up to
        `timeout` seconds for it; raises AssertionError when none arrives."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.mails(to) if subject_contains in str(m["Subject"])]
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail to {to} with {subject_contains!r} in {timeout} s")
            time.sleep(0.1)

    def start_identity_replica(self, name: str) -> int:
        """Start one more identity process (same database, NATS, keys and settings) on its own
        port and wait until it serves; returns the port. It stops with the stack."""
        port = free_port()
        env = {**self._service_env("identity", "helios_identity"), "HELIOS_GRPC_PORT": str(port)}
        self.ports[name] = port
        self._spawn(name, "helios.identity", env)
        asyncio.run(self._wait_grpc([name]))
        return port

    def start_gateway(self, name: str, overrides: dict[str, str]) -> str:
        """Start one more gateway replica (same database, services and keys) with settings
        overridden; returns its URL. It stops with the stack."""
        port = free_port()
        env = {**self._gateway_env(), "HELIOS_HTTP_PORT": str(port), **overrides}
        self._spawn(name, "helios.gateway", env)
        url = f"http://localhost:{port}"
        self._wait_http(name, f"{url}/readyz")
        return url

    def _gateway_env(self) -> dict[str, str]:
        return {
            **self._common_env("gateway"),
            "HELIOS_HTTP_HOST": "127.0.0.1",
            "HELIOS_HTTP_PORT": str(self.ports.get("gateway", 0)),
            "HELIOS_DATABASE_URL": self.database_url,
            "HELIOS_DATABASE_ROLE": "helios_gateway",
            "HELIOS_COOKIE_KEY_FILE": str(self.state / "gateway-cookie.key"),
            "HELIOS_NATS_URL": self.nats_url,
            **{
                _target_variable(name): f"localhost:{self.ports.get(name, 0)}"
                for name, _, _ in GRPC_SERVICES
            },
        }

    def _spawn(self, name: str, module: str, env: dict[str, str]) -> None:
        process = ManagedProcess(name, module, env, self.state / "logs" / f"{name}.log")
        process.start()
        self.processes[name] = process

    def _check_alive(self, name: str) -> None:
        process = self.processes[name]
        if not process.running:
            raise RuntimeError(
                f"{name} exited with status {process.returncode}:\n{process.log_tail()}"
            )

    async def _wait_grpc(self, names: list[str], limit: float = 60.0) -> None:
        certs = self.certs("devstack")
        for name in names:
            deadline = time.monotonic() + limit
            async with secure_channel(f"localhost:{self.ports[name]}", certs) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                while True:
                    self._check_alive(name)
                    try:
                        reply = await stub.Check(  # type: ignore[attr-defined]
                            health_pb2.HealthCheckRequest(), timeout=1, wait_for_ready=True
                        )
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            break
                    except grpc.aio.AioRpcError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} did not report SERVING within {limit} s")
                    await asyncio.sleep(0.1)

    def restart(self, name: str) -> None:
        """Stop one gRPC service process and start it again with the same settings and port
        (what a crash and a Kubernetes restart look like), then wait until it serves."""
        process = self.processes[name]
        process.stop()
        process.start()
        asyncio.run(self._wait_grpc([name]))

    def _wait_http(self, name: str, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(name)
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} was not ready at {url} within {timeout} s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the processes (gateways, replicas and the mail sink first), then the throwaway
        servers; delete the state dir."""
        grpc_names = [n for n, _, _ in GRPC_SERVICES]
        extras = [n for n in self.processes if n not in grpc_names]
        for name in [*extras, *reversed(grpc_names)]:
            if name in self.processes:
                self.processes[name].stop()
        if self.nats is not None:
            self.nats.destroy()
        if self.postgres is not None:
            self.postgres.stop()
        shutil.rmtree(self.state, ignore_errors=True)
