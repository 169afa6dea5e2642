"""Keyvault's composition root: the only place its adapters are built."""

from __future__ import annotations

import datetime as dt
import sys
from importlib.resources import files
from pathlib import Path

import boto3

from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.migrations import migrate
from helios.kernel.permission_catalog import registration_task
from helios.kernel.runtime import ServiceRuntime, cert_files
from helios.keyvault.attachments import AttachmentService
from helios.keyvault.domain.permissions import KEYVAULT_PERMISSIONS
from helios.keyvault.object_store import LocalObjectStore, ObjectStore, S3ObjectStore
from helios.keyvault.ports import SealProvider
from helios.keyvault.rotation import ScheduledRotation
from helios.keyvault.rpc.servicer import KeyvaultServicer
from helios.keyvault.seal import LocalSeal, SealError
from helios.keyvault.secrets_store import SecretStore
from helios.keyvault.service import KeyvaultService
from helios.keyvault.settings import KeyvaultSettings
from helios.keyvault.store import tables
from helios.keyvault.store.postgres import postgres_unit_of_work
from helios.keyvault.store.secrets_postgres import postgres_secret_unit_of_work
from helios.keyvault.vault_seal import VaultTransitSeal
from helios.proto.keyvault.v1 import keyvault_pb2, keyvault_pb2_grpc

__all__ = ["NAME", "migrate_schema", "open_object_store", "open_seal", "wire"]

NAME = "keyvault"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def open_seal(settings: KeyvaultSettings) -> SealProvider:
    """The root of the key hierarchy; a wrong passphrase or a bad key file stops the process
    with a clear message (exit status 2) before it serves anything."""
    try:
        settings.seal_state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if settings.seal_provider == "vault":
            if not settings.vault_addr or settings.vault_token is None:
                raise SealError(
                    "seal provider vault needs HELIOS_VAULT_ADDR and HELIOS_VAULT_TOKEN"
                )
            return VaultTransitSeal.open(
                settings.vault_addr,
                settings.vault_token.get_secret_value(),
                settings.vault_transit_key,
                settings.seal_state_dir,
                mount_point=settings.vault_mount,
                ca_file=settings.vault_ca_file,
            )
        if settings.seal_passphrase is not None:
            return LocalSeal.from_passphrase(
                settings.seal_passphrase.get_secret_value(),
                settings.seal_state_dir,
                time_cost=settings.seal_argon2_time_cost,
                memory_kib=settings.seal_argon2_memory_kib,
                parallelism=settings.seal_argon2_parallelism,
            )
        return LocalSeal.from_key_file(settings.seal_state_dir / "root.key")
    except SealError as exc:
        print(f"keyvault: cannot open the seal: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def open_object_store(settings: KeyvaultSettings) -> ObjectStore:
    """Where attachments live: a local folder (default) or an S3 bucket through boto3 (any S3
    API; credentials from boto3's usual chain, never from Helios settings)."""
    if settings.attachment_store == "s3":
        if not settings.attachment_s3_bucket:
            print(
                "keyvault: attachment store s3 needs HELIOS_ATTACHMENT_S3_BUCKET", file=sys.stderr
            )
            raise SystemExit(2)
        client = boto3.client(
            "s3",
            endpoint_url=settings.attachment_s3_endpoint_url,
            region_name=settings.attachment_s3_region,
        )
        return S3ObjectStore(
            client, settings.attachment_s3_bucket, prefix=settings.attachment_s3_prefix
        )
    return LocalObjectStore(settings.attachment_dir or settings.seal_state_dir / "attachments")


def wire(settings: KeyvaultSettings) -> ServiceRuntime:
    """The whole keyvault process, not yet started."""
    runtime = ServiceRuntime.build(NAME, settings, tables.outbox)
    recorder = AuditRecorder(NAME, tables.outbox)
    notify = runtime.relay.notify
    seal = open_seal(settings)
    keys_uow = postgres_unit_of_work(runtime.sessions, recorder, _now, on_commit=notify)
    service = KeyvaultService(keys_uow, seal, _now)
    attachments = AttachmentService(
        service, open_object_store(settings), keys_uow, max_bytes=settings.attachment_max_bytes
    )
    secrets = SecretStore(
        postgres_secret_unit_of_work(runtime.sessions, recorder, _now, on_commit=notify),
        seal,
        _now,
        callers=settings.secrets_callers,
    )
    servicer = KeyvaultServicer(service, secrets, attachments)
    runtime.grpc.add_background(ScheduledRotation(service, settings.rotation_check_seconds).run)
    runtime.grpc.add_service(
        keyvault_pb2.DESCRIPTOR.services_by_name["KeyvaultService"].full_name,
        lambda server: keyvault_pb2_grpc.add_KeyvaultServiceServicer_to_server(servicer, server),
    )
    runtime.grpc.add_background(
        registration_task(NAME, KEYVAULT_PERMISSIONS, settings.authz_target, cert_files(settings))
    )
    return runtime


def migrate_schema(settings: KeyvaultSettings) -> None:
    """Upgrade the keyvault schema to head."""
    location = Path(str(files("helios.keyvault.store") / "migrations"))
    migrate(settings.database_url.get_secret_value(), tables.SCHEMA, location, tables.metadata)
