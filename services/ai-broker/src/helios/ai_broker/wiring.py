"""The AI broker's composition root: the only place its adapters are built."""

from __future__ import annotations

import datetime as dt
from importlib.resources import files
from pathlib import Path

from helios.ai_broker.authz_gate import GrpcAuthz
from helios.ai_broker.domain.permissions import AI_BROKER_PERMISSIONS
from helios.ai_broker.rpc.servicer import BrokerServicer
from helios.ai_broker.service.bundle import BrokerServices
from helios.ai_broker.settings import AiBrokerSettings
from helios.ai_broker.store import tables
from helios.ai_broker.store.postgres import postgres_unit_of_work
from helios.ai_broker.target_caller import GrpcActionTargets
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.migrations import migrate
from helios.kernel.permission_catalog import registration_task
from helios.kernel.principal import AssertionSigner, load_private_key, load_public_keys
from helios.kernel.runtime import ServiceRuntime, cert_files
from helios.kernel.step_up import StepUpVerifier
from helios.proto.ai_broker.v1 import ai_broker_pb2, ai_broker_pb2_grpc

__all__ = ["NAME", "build_services", "migrate_schema", "wire"]

NAME = "ai-broker"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def build_services(settings: AiBrokerSettings, runtime: ServiceRuntime) -> BrokerServices:
    """The use cases over PostgreSQL, authz, the action targets and the broker's signing key."""
    uow = postgres_unit_of_work(
        runtime.sessions, AuditRecorder(NAME, tables.outbox), _now, on_commit=runtime.relay.notify
    )
    signer = AssertionSigner(load_private_key(settings.principal_signing_key_file))
    return BrokerServices.build(
        uow,
        _now,
        GrpcAuthz(settings.authz_target, cert_files(settings)),
        signer,
        ai_session_rate_limit=settings.ai_session_rate_limit_per_minute,
        action_targets=settings.action_targets,
        targets=GrpcActionTargets(
            settings.action_targets,
            cert_files(settings),
            signer,
            timeout=settings.action_call_timeout_seconds,
        ),
        confirmation_ttl=dt.timedelta(seconds=settings.confirmation_ttl_seconds),
        step_up=StepUpVerifier(load_public_keys(settings.principal_public_key_file)),
    )


def wire(settings: AiBrokerSettings) -> ServiceRuntime:
    """The whole broker process, not yet started; it registers its permissions with authz."""
    runtime = ServiceRuntime.build(NAME, settings, tables.outbox)
    servicer = BrokerServicer(build_services(settings, runtime))
    runtime.grpc.add_service(
        ai_broker_pb2.DESCRIPTOR.services_by_name["AiBrokerService"].full_name,
        lambda server: ai_broker_pb2_grpc.add_AiBrokerServiceServicer_to_server(servicer, server),
    )
    runtime.grpc.add_background(
        registration_task(NAME, AI_BROKER_PERMISSIONS, settings.authz_target, cert_files(settings))
    )
    return runtime


def migrate_schema(settings: AiBrokerSettings) -> None:
    """Upgrade the ai_broker schema to head."""
    location = Path(str(files("helios.ai_broker.store") / "migrations"))
    migrate(settings.database_url.get_secret_value(), tables.SCHEMA, location, tables.metadata)
