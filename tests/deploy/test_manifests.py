"""P4 / E1: deploy/k8s renders offline with kubectl, validates against the Kubernetes schemas,
hardens every pod, wires exactly the settings each process reads, opens only the network paths
the code uses, and passes checkov but for the exceptions deploy/k8s/README.md explains."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import TypeAdapter
from pydantic_settings import BaseSettings

from helios.ai_broker.settings import AiBrokerSettings
from helios.audit.settings import AuditSettings
from helios.authz.settings import AuthzSettings
from helios.gateway.settings import GatewaySettings
from helios.identity.settings import IdentitySettings
from helios.kernel.settings import SECRETS_DIR_VARIABLE, GrpcSettings
from helios.keyvault.settings import KeyvaultSettings
from helios.recruitment_example.settings import RecruitmentSettings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
NAMESPACE = "helios"
# The oldest Kubernetes deploy/k8s/README.md supports and the newest the pinned
# kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
CRD_SCHEMAS = Path(__file__).parent / "crd_schemas"
CHECKOV = REPO / ".tools" / "checkov-venv" / "bin" / "checkov"
KUBECTL_FALLBACK = REPO / ".tools" / "kubectl-venv" / "bin" / "kubectl"

SETTINGS: dict[str, type[BaseSettings]] = {
    "identity": IdentitySettings,
    "authz": AuthzSettings,
    "ai-broker": AiBrokerSettings,
    "audit": AuditSettings,
    "keyvault": KeyvaultSettings,
    "gateway": GatewaySettings,
}
GRPC_SERVICES = [name for name, cls in SETTINGS.items() if issubclass(cls, GrpcSettings)]
# Variables the manifests may set besides HELIOS_*: the OpenTelemetry SDK's own, and the
# downward-API values OTEL_RESOURCE_ATTRIBUTES is built from.
NON_HELIOS_VARIABLES = re.compile(r"^(OTEL_[A-Z_]+|POD_NAME|POD_NAMESPACE)$")
POD_KINDS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}
CRD_GROUPS = {"cert-manager.io/v1"}


# -- rendering ---------------------------------------------------------------------------------


def _kubectl() -> str:
    found = shutil.which("kubectl") or (str(KUBECTL_FALLBACK) if KUBECTL_FALLBACK.exists() else "")
    if not found:
        pytest.fail("kubectl is not installed: `make kubectl` installs it into .tools/")
    return found


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay rendered by `kubectl kustomize` (offline: no cluster is contacted)."""
    kubectl = _kubectl()
    out: dict[str, list[dict[str, Any]]] = {}
    for overlay in OVERLAYS:
        done = subprocess.run(
            [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"kubectl kustomize overlays/{overlay}:\n{done.stderr}"
        out[overlay] = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return out


def _named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def _workloads(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(object, pod spec) of everything that runs pods."""
    for doc in docs:
        if doc["kind"] in POD_KINDS:
            yield doc, doc["spec"]["template"]["spec"]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def _config_maps(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}


def _environment(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str | None]:
    """The container's variables: values from ConfigMaps and `value`, None for Secret and
    downward-API references (known only in the cluster)."""
    maps = _config_maps(docs)
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    for var in container.get("env", []):
        env[var["name"]] = var.get("value")
    return env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_p4_every_overlay_renders_offline_with_every_object(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    have = {(d["kind"], d["metadata"]["name"]) for d in docs}
    per_deployable = ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget")
    expected = {(kind, name) for name in SETTINGS for kind in per_deployable}
    expected |= {("HorizontalPodAutoscaler", name) for name in SETTINGS}
    expected |= {("Certificate", name) for name in [*SETTINGS, "otel-collector", "helios-ca"]}
    expected |= {("Job", f"{name}-migrate") for name in SETTINGS}
    expected |= {(kind, "otel-collector") for kind in per_deployable}
    expected |= {("Namespace", NAMESPACE), ("PersistentVolumeClaim", "keyvault-seal-state")}
    expected |= {("NetworkPolicy", "default-deny"), ("Issuer", "helios-ca")}
    assert expected <= have, sorted(expected - have)
    stray = [
        (d["kind"], d["metadata"]["name"])
        for d in docs
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != NAMESPACE
    ]
    assert stray == []


# -- schemas -----------------------------------------------------------------------------------


def _crd_schema(doc: dict[str, Any]) -> dict[str, Any]:
    path = CRD_SCHEMAS / f"{doc['kind'].lower()}.{doc['apiVersion'].replace('/', '_')}.json"
    assert path.exists(), f"no schema for {doc['apiVersion']} {doc['kind']}"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def _schema_errors(docs: list[dict[str, Any]], version: str) -> list[str]:
    errors = []
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            if doc["apiVersion"] in CRD_GROUPS:
                jsonschema.validate(doc, _crd_schema(doc))
            else:
                kubernetes_validate.validate(doc, version, strict=True)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            errors.append(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{where}: {exc.message}")
    return errors


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_p4_every_rendered_object_validates_strictly(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, version: str
) -> None:
    """Built-in kinds against kubernetes-validate's bundled schemas in strict mode (unknown
    fields refused); cert-manager's against tests/deploy/crd_schemas; any other kind fails."""
    assert _schema_errors(rendered[overlay], version) == []


def test_p4_schema_validation_refuses_unknown_fields(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    deployment = json.loads(json.dumps(_named(rendered["prod"], "Deployment", "identity")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    certificate = json.loads(json.dumps(_named(rendered["prod"], "Certificate", "identity")))
    certificate["spec"]["dnsName"] = ["identity"]
    errors = _schema_errors([deployment, certificate], KUBERNETES_VERSIONS[0])
    assert len(errors) == 2
    assert "readOnlyRootFileSystem" in errors[0]
    assert "dnsName" in errors[1]


# -- pod hardening -----------------------------------------------------------------------------


def _image_pinned(image: str) -> bool:
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    return tag not in ("", "latest")


def hardening_violations(doc: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    """What breaks the pod policy: non-root, read-only root, no privilege escalation, every
    capability dropped, seccomp, no service account token, resources, probes, pinned images."""
    where = f"{doc['kind']}/{doc['metadata']['name']}"
    found = []
    pod_context = pod.get("securityContext", {})
    if pod.get("automountServiceAccountToken") is not False:
        found.append(f"{where}: mounts a service account token")
    if pod_context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        found.append(f"{where}: seccomp is not RuntimeDefault")
    if any(pod.get(host) for host in ("hostNetwork", "hostPID", "hostIPC")):
        found.append(f"{where}: shares a host namespace")
    for container in _containers(pod):
        at = f"{where}/{container['name']}"
        context = {**pod_context, **container.get("securityContext", {})}
        if context.get("runAsNonRoot") is not True or context.get("runAsUser", 0) == 0:
            found.append(f"{at}: may run as root")
        if context.get("readOnlyRootFilesystem") is not True:
            found.append(f"{at}: writable root file system")
        if context.get("allowPrivilegeEscalation") is not False or context.get("privileged"):
            found.append(f"{at}: may escalate privileges")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []) or capabilities.get("add"):
            found.append(f"{at}: keeps capabilities")
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            if {"cpu", "memory"} - set(resources.get(bound, {})):
                found.append(f"{at}: no cpu and memory {bound}")
        if doc["kind"] != "Job" and not (
            "livenessProbe" in container and "readinessProbe" in container
        ):
            found.append(f"{at}: no liveness and readiness probes")
        if not _image_pinned(container["image"]):
            found.append(f"{at}: image {container['image']} has no tag or digest")
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_p4_every_pod_is_hardened(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    workloads = list(_workloads(rendered[overlay]))
    assert len(workloads) == 2 * len(SETTINGS) + 1  # Deployments, migration Jobs, collector
    assert [v for doc, pod in workloads for v in hardening_violations(doc, pod)] == []


def test_p4_pod_policy_flags_what_it_forbids() -> None:
    doc = {"kind": "Deployment", "metadata": {"name": "bad"}}
    pod = {
        "securityContext": {"runAsUser": 0},
        "initContainers": [{"name": "init", "image": "busybox", "securityContext": {}}],
        "containers": [
            {
                "name": "app",
                "image": "app:latest",
                "securityContext": {"privileged": True, "capabilities": {"add": ["NET_ADMIN"]}},
            }
        ],
    }
    found = hardening_violations(doc, pod)
    for text in (
        "Deployment/bad: mounts a service account token",
        "Deployment/bad: seccomp is not RuntimeDefault",
        "Deployment/bad/init: may run as root",
        "Deployment/bad/init: image busybox has no tag or digest",
        "Deployment/bad/app: writable root file system",
        "Deployment/bad/app: may escalate privileges",
        "Deployment/bad/app: keeps capabilities",
        "Deployment/bad/app: no cpu and memory limits",
        "Deployment/bad/app: no liveness and readiness probes",
        "Deployment/bad/app: image app:latest has no tag or digest",
    ):
        assert text in found


def test_p4_prod_pins_every_image_by_digest(rendered: dict[str, list[dict[str, Any]]]) -> None:
    images = {c["image"] for _, pod in _workloads(rendered["prod"]) for c in _containers(pod)}
    assert len(images) == len(SETTINGS) + 1
    assert [i for i in images if not re.search(r"@sha256:[0-9a-f]{64}$", i)] == []


# -- probes, objects per deployable ------------------------------------------------------------


def _server(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    container: dict[str, Any] = _named(docs, "Deployment", name)["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def _port(container: dict[str, Any], name_or_number: str | int) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    numbers = [p["containerPort"] for p in container["ports"] if p["name"] == name_or_number]
    assert numbers, f"{container['name']} has no port named {name_or_number}"
    return int(numbers[0])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_p4_grpc_services_are_probed_over_grpc_health(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """The kubelet's built-in grpc probe on the plaintext health-only listener: its port is
    the process's HELIOS_HEALTH_PORT, not the mTLS port."""
    docs = rendered[overlay]
    for name in GRPC_SERVICES:
        container = _server(docs, name)
        env = _environment(docs, container)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert set(container[probe]) & {"grpc", "httpGet", "exec", "tcpSocket"} == {"grpc"}
            assert container[probe]["grpc"]["port"] == int(env["HELIOS_HEALTH_PORT"] or 0)
        assert env["HELIOS_HEALTH_PORT"] != env["HELIOS_GRPC_PORT"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_p4_gateway_is_probed_on_healthz_and_readyz_over_https(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    container = _server(docs, "gateway")
    env = _environment(docs, container)
    paths = {}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["scheme"] == "HTTPS"  # the gateway serves TLS 1.3 only (E1)
        assert _port(container, get["port"]) == int(env["HELIOS_HTTP_PORT"] or 0)
        paths[probe] = get["path"]
    assert paths == {
        "startupProbe": "/healthz",
        "readinessProbe": "/readyz",
        "livenessProbe": "/healthz",
    }


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_p4_every_deployable_has_service_account_pdb_autoscaler_and_migration(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    for name in SETTINGS:
        deployment = _named(docs, "Deployment", name)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        pod = deployment["spec"]["template"]["spec"]
        assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
        account = _named(docs, "ServiceAccount", name)
        assert account["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] == name
        service = _named(docs, "Service", name)
        assert service["spec"]["type"] == "ClusterIP"
        assert _selects(service["spec"]["selector"], pod_labels)
        for port in service["spec"]["ports"]:
            _port(pod["containers"][0], port["targetPort"])
        budget = _named(docs, "PodDisruptionBudget", name)
        assert _selects(budget["spec"]["selector"]["matchLabels"], pod_labels)
        scaler = _named(docs, "HorizontalPodAutoscaler", name)
        assert scaler["apiVersion"] == "autoscaling/v2"
        assert scaler["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert scaler["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        job = _named(docs, "Job", f"{name}-migrate")["spec"]["template"]["spec"]
        assert job["containers"][0]["args"] == ["migrate"]
        assert pod["containers"][0]["args"] == ["serve"]
        assert job["containers"][0]["image"] == pod["containers"][0]["image"]
        assert job["restartPolicy"] == "Never"


# -- settings ----------------------------------------------------------------------------------


def _is_complex(annotation: Any) -> bool:
    """Whether pydantic-settings reads the field from JSON (a collection, or an optional one)."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = typing.get_args(annotation) if union else (annotation,)
    return any(typing.get_origin(m) in (list, dict, set, frozenset, tuple) for m in members)


def setting_errors(
    settings: type[BaseSettings], env: dict[str, str | None], files: frozenset[str] = frozenset()
) -> list[str]:
    """Variables the process does not read, values it would refuse, required ones missing.
    `files` are the names of the files in the HELIOS_SECRETS_DIR folder: settings too (secret,
    so their values are unknown here), which a variable of the same name would shadow."""
    fields = settings.model_fields
    errors = [
        f"{name}: set in the environment, shadowing its secrets file" for name in files & env.keys()
    ]
    errors += [
        f"{name}: a secrets file {settings.__name__} does not read"
        for name in sorted(files)
        if not name.startswith("HELIOS_") or name.removeprefix("HELIOS_").lower() not in fields
    ]
    for variable, value in env.items():
        if NON_HELIOS_VARIABLES.match(variable) or variable == SECRETS_DIR_VARIABLE:
            continue  # HELIOS_SECRETS_DIR is read by load_settings, not a settings field
        key = variable.removeprefix("HELIOS_").lower()
        if not variable.startswith("HELIOS_") or key not in fields:
            errors.append(f"{variable}: not read by {settings.__name__}")
            continue
        if value is None:
            continue
        info = fields[key]
        annotation: Any = (
            Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        )
        try:
            TypeAdapter(annotation).validate_python(
                json.loads(value) if _is_complex(info.annotation) else value
            )
        except ValueError as exc:
            errors.append(f"{variable}={value!r}: {exc}")
    for key, info in fields.items():
        if info.is_required() and f"HELIOS_{key.upper()}" not in env.keys() | files:
            errors.append(f"HELIOS_{key.upper()}: required and not set")
    return errors


def secrets_folder(
    pod: dict[str, Any], container: dict[str, Any], env: dict[str, str | None]
) -> tuple[frozenset[str], list[str]]:
    """The file names in the folder HELIOS_SECRETS_DIR names, and what is wrong with it: it must
    be exactly one read-only mount of Secrets only, whose items name every file (without items
    the files would be named after the Secret's keys, unknown here)."""
    folder = env.get(SECRETS_DIR_VARIABLE)
    if folder is None:
        return frozenset(), []
    mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == folder]
    if len(mounts) != 1:
        return frozenset(), [
            f"{SECRETS_DIR_VARIABLE}={folder}: {len(mounts)} volumes mounted there"
        ]
    errors = [] if mounts[0].get("readOnly") else [f"{folder}: mounted writable"]
    volume = next(v for v in pod.get("volumes", []) if v["name"] == mounts[0]["name"])
    if "projected" in volume:
        sources = [pair for source in volume["projected"]["sources"] for pair in source.items()]
    else:
        sources = [(kind, spec) for kind, spec in volume.items() if kind != "name"]
    files = set()
    for kind, spec in sources:
        paths = [item["path"] for item in spec.get("items", [])]
        if kind != "secret" or not paths:
            named = spec.get("name") or spec.get("secretName")
            errors.append(f"{folder}: {kind} {named} is not a Secret with items")
        files |= set(paths)
    return frozenset(files), errors


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_p4_every_process_gets_exactly_the_settings_it_reads(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Each Deployment and migration Job: every variable and every file of the secrets folder
    (HELIOS_SECRETS_DIR) is a field of the process's settings class, variables with a value it
    accepts, and every required field is set (Secrets as files of that folder)."""
    docs = rendered[overlay]
    errors = []
    for name, settings in SETTINGS.items():
        for kind, object_name in (("Deployment", name), ("Job", f"{name}-migrate")):
            pod = _named(docs, kind, object_name)["spec"]["template"]["spec"]
            env = _environment(docs, pod["containers"][0])
            files, wrong = secrets_folder(pod, pod["containers"][0], env)
            assert "HELIOS_DATABASE_URL" in files  # no secret in the environment
            wrong += setting_errors(settings, env, files)
            errors += [f"{kind}/{object_name}: {e}" for e in wrong]
    assert errors == []


def test_p4_settings_check_refuses_unknown_bad_and_missing_values() -> None:
    errors = setting_errors(
        AuditSettings,
        {"HELIOS_CHECKPOINT_INTERVAL_SECOND": "60", "HELIOS_GRPC_PORT": "70000", "FOO": "1"},
    )
    assert any(e.startswith("HELIOS_CHECKPOINT_INTERVAL_SECOND: not read") for e in errors)
    assert any(e.startswith("HELIOS_GRPC_PORT='70000'") for e in errors)
    assert "FOO: not read by AuditSettings" in errors
    assert "HELIOS_DATABASE_URL: required and not set" in errors
    errors = setting_errors(AuditSettings, {}, frozenset({"HELIOS_DATABASE_URL"}))
    assert "HELIOS_TLS_CA_FILE: required and not set" in errors
    assert [e for e in errors if e.startswith("HELIOS_DATABASE_URL")] == []
    errors = setting_errors(
        AuditSettings,
        {"HELIOS_DATABASE_URL": None},
        frozenset({"HELIOS_DATABASE_URL", "HELIOS_SEAL_PASSPHRASE"}),
    )
    assert errors[:2] == [
        "HELIOS_DATABASE_URL: set in the environment, shadowing its secrets file",
        "HELIOS_SEAL_PASSPHRASE: a secrets file AuditSettings does not read",
    ]


def test_p4_secrets_folder_check_refuses_what_the_process_would_not_read() -> None:
    """The folder must be one read-only mount of Secrets whose items name the files."""
    env: dict[str, str | None] = {SECRETS_DIR_VARIABLE: "/etc/helios/secrets"}
    mount = {"name": "secrets", "mountPath": "/etc/helios/secrets", "readOnly": True}
    database = {"name": "helios-database", "items": [{"key": "url", "path": "HELIOS_DATABASE_URL"}]}
    projected = {"name": "secrets", "projected": {"sources": [{"secret": database}]}}
    pod = {"volumes": [projected]}
    assert secrets_folder(pod, {"volumeMounts": [mount]}, env) == (
        frozenset({"HELIOS_DATABASE_URL"}),
        [],
    )
    assert secrets_folder(pod, {}, env)[1] == [
        "HELIOS_SECRETS_DIR=/etc/helios/secrets: 0 volumes mounted there"
    ]
    writable = {**mount, "readOnly": False}
    assert secrets_folder(pod, {"volumeMounts": [writable]}, env)[1] == [
        "/etc/helios/secrets: mounted writable"
    ]
    unnamed = {"name": "secrets", "secret": {"secretName": "helios-database"}}
    assert secrets_folder({"volumes": [unnamed]}, {"volumeMounts": [mount]}, env) == (
        frozenset(),
        ["/etc/helios/secrets: secret helios-database is not a Secret with items"],
    )
    config = {"name": "secrets", "configMap": {"name": "plain", "items": database["items"]}}
    assert secrets_folder({"volumes": [config]}, {"volumeMounts": [mount]}, env)[1] == [
        "/etc/helios/secrets: configMap plain is not a Secret with items"
    ]
    assert secrets_folder(pod, {"volumeMounts": [mount]}, {}) == (frozenset(), [])


def _mounted_at(container: dict[str, Any], path: str) -> str | None:
    """The volume whose mount holds `path`, if any."""
    for mount in container.get("volumeMounts", []):
        if path == mount["mountPath"] or path.startswith(mount["mountPath"].rstrip("/") + "/"):
            name: str = mount["name"]
            return name
    return None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_p4_every_configured_file_is_on_a_mounted_volume(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Files (HELIOS_*_FILE, the OTLP exporter's certificate and key) and the secrets folder
    (HELIOS_SECRETS_DIR) are checked when settings load, by serve and migrate alike; other
    directories (HELIOS_*_DIR) are used by serve only."""
    docs = rendered[overlay]
    missing = []
    for doc, pod in _workloads(docs):
        paths = r"_(FILE|CERTIFICATE|KEY)$|^HELIOS_SECRETS_DIR$"
        if doc["kind"] != "Job":
            paths += r"|_DIR$"
        for container in pod["containers"]:
            for variable, value in _environment(docs, container).items():
                if re.search(paths, variable) and value and _mounted_at(container, value) is None:
                    missing.append(f"{doc['metadata']['name']}: {variable}={value}")
    assert missing == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_p4_every_target_names_a_service_port(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    ports = {
        (d["metadata"]["name"], p["port"])
        for d in docs
        if d["kind"] == "Service"
        for p in d["spec"]["ports"]
    }
    targets = {
        value
        for name in SETTINGS
        for variable, value in _environment(docs, _server(docs, name)).items()
        if variable.endswith("_TARGET") and value
    }
    assert targets
    assert [t for t in targets if (t.split(":")[0], int(t.split(":")[1])) not in ports] == []


# -- mutual TLS (E1) ---------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_e1_every_process_mounts_its_own_certificate_from_the_helios_ca(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """cert-manager issues each deployable a certificate whose URI SAN is its mTLS identity and
    whose DNS SANs are the names callers dial; the pod mounts exactly that Secret where
    HELIOS_TLS_CERT_FILE points."""
    docs = rendered[overlay]
    issuer = _named(docs, "Issuer", "helios-ca")
    ca = _named(docs, "Certificate", "helios-ca")
    assert ca["spec"]["isCA"] is True
    assert issuer["spec"]["ca"]["secretName"] == ca["spec"]["secretName"]
    for name in [*SETTINGS, "otel-collector"]:
        spec = _named(docs, "Certificate", name)["spec"]
        assert spec["issuerRef"]["name"] == "helios-ca"
        assert spec["uris"] == [f"spiffe://helios/{name}"]
        assert {name, f"{name}.{NAMESPACE}.svc"} <= set(spec["dnsNames"])
        assert "server auth" in spec["usages"]
        pod = _named(docs, "Deployment", name)["spec"]["template"]["spec"]
        secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        container = pod["containers"][0]
        if name == "otel-collector":
            assert (
                secrets[_mounted_at(container, "/etc/otelcol/tls/tls.crt") or ""]
                == (spec["secretName"])
            )
            continue
        assert "client auth" in spec["usages"]
        env = _environment(docs, container)
        for variable in ("HELIOS_TLS_CERT_FILE", "HELIOS_TLS_KEY_FILE", "HELIOS_TLS_CA_FILE"):
            assert secrets[_mounted_at(container, env[variable] or "") or ""] == spec["secretName"]


# -- network policies --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    """A pod as NetworkPolicies see it: namespace, labels, named ports."""

    namespace: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, operator = labels.get(expression["key"]), expression["operator"]
        ok = {
            "In": value in expression.get("values", []),
            "NotIn": value not in expression.get("values", []),
            "Exists": value is not None,
            "DoesNotExist": value is None,
        }[operator]
        if not ok:
            return False
    return True


def _peer_matches(peer: dict[str, Any], namespace: str, pod: Pod) -> bool:
    if "ipBlock" in peer:
        return True  # an address block may hold pod addresses: count it as reaching every pod
    namespaces = peer.get("namespaceSelector")
    in_namespace = (
        pod.namespace == namespace
        if namespaces is None
        else _matches(namespaces, {"kubernetes.io/metadata.name": pod.namespace})
    )
    return in_namespace and _matches(peer.get("podSelector", {}), pod.labels)


def _port_matches(ports: list[dict[str, Any]], destination: Pod, port: int) -> bool:
    if not ports:
        return True
    for rule in ports:
        if rule.get("protocol", "TCP") != "TCP":
            continue
        if "port" not in rule:
            return True
        first = rule["port"]
        number = destination.ports.get(first) if isinstance(first, str) else first
        if number is not None and number <= port <= rule.get("endPort", number):
            return True
    return False


def _policy_types(policy: dict[str, Any]) -> list[str]:
    spec = policy["spec"]
    return list(spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])])


def _side_allows(
    policies: list[dict[str, Any]],
    direction: str,
    subject: Pod,
    other: Pod,
    destination: Pod,
    port: int,
) -> bool:
    """Whether the policies selecting `subject` for `direction` admit `other` (true when none
    selects it: Kubernetes then allows everything in that direction)."""
    kind, peers = ("Ingress", "from") if direction == "ingress" else ("Egress", "to")
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == subject.namespace
        and kind in _policy_types(p)
        and _matches(p["spec"]["podSelector"], subject.labels)
    ]
    if not selecting:
        return True
    return any(
        _port_matches(rule.get("ports", []), destination, port)
        and (
            not rule.get(peers)
            or any(_peer_matches(peer, p["metadata"]["namespace"], other) for peer in rule[peers])
        )
        for p in selecting
        for rule in p["spec"].get(direction, [])
    )


def reachable(policies: list[dict[str, Any]], source: Pod, destination: Pod, port: int) -> bool:
    """Whether NetworkPolicies let `source` open a TCP connection to `destination`:`port`."""
    return _side_allows(
        policies, "egress", source, destination, destination, port
    ) and _side_allows(policies, "ingress", destination, source, destination, port)


def _pods(docs: list[dict[str, Any]]) -> dict[str, Pod]:
    pods = {}
    for doc, pod in _workloads(docs):
        ports = {
            p["name"]: p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])
        }
        labels = doc["spec"]["template"]["metadata"]["labels"]
        pods[doc["metadata"]["name"]] = Pod(doc["metadata"]["namespace"], labels, ports)
    return pods


# Pods outside the namespace, where the examples and the policies' defaults put them.
INGRESS_CONTROLLER = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
PRODUCT_SERVICE = Pod("recruitment", {"helios.io/product-service": "true"}, {"grpc": 50051})
STRANGER = Pod("default", {"app": "curious"}, {"grpc": 50051})
POSTGRES = Pod("helios-data", {"cnpg.io/cluster": "helios-db"})
NATS = Pod("helios-data", {"app.kubernetes.io/name": "nats"})
PROMETHEUS = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})


def expected_grpc_callees() -> dict[str, set[str]]:
    """Who calls whom, from the code: a process calls service X iff its settings have an
    `x_target`; the broker also calls product services (`action_targets`); a product service
    calls what the example product service's settings name."""

    def callees(name: str, settings: type[BaseSettings]) -> set[str]:
        named = {
            f.removesuffix("_target").replace("_", "-")
            for f in settings.model_fields
            if f.endswith("_target")
        }
        return (named & set(GRPC_SERVICES)) - {name}

    graph = {name: callees(name, settings) for name, settings in SETTINGS.items()}
    assert "action_targets" in AiBrokerSettings.model_fields
    graph["ai-broker"].add("product")
    graph["product"] = callees("product", RecruitmentSettings)
    return graph


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_p4_network_policies_open_exactly_the_calls_the_code_makes(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Each side on its own: a service admits only its callers (ingress), a Helios pod reaches
    only its callees (egress), so neither side leans on the other."""
    docs = rendered[overlay]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    pods = _pods(docs)
    expected = expected_grpc_callees()
    assert expected["identity"] == {"authz", "keyvault"}  # the graph is not empty by mistake
    sources = {**pods, "product": PRODUCT_SERVICE, "stranger": STRANGER}
    sources["ingress"] = INGRESS_CONTROLLER
    wrong = []
    for source_name, source in sources.items():
        targets = {name: pods[name] for name in GRPC_SERVICES}
        if source.namespace == NAMESPACE:
            targets["product"] = PRODUCT_SERVICE
        for target_name, target in targets.items():
            wanted = target_name in expected.get(source_name, set())
            sides = {"egress": (source, target)} if source.namespace == NAMESPACE else {}
            if target.namespace == NAMESPACE:
                sides["ingress"] = (target, source)
            for direction, (subject, other) in sides.items():
                allowed = _side_allows(policies, direction, subject, other, target, 50051)
                if allowed != wanted:
                    wrong.append(f"{direction}: {source_name} -> {target_name} allowed={allowed}")
    assert wrong == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_p4_network_policies_open_the_edge_and_the_backing_services_only(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    pods = _pods(docs)
    gateway, collector = pods["gateway"], pods["otel-collector"]
    assert reachable(policies, INGRESS_CONTROLLER, gateway, 8080)
    assert not reachable(policies, STRANGER, gateway, 8080)
    assert not reachable(policies, PRODUCT_SERVICE, gateway, 8080)
    assert not reachable(policies, pods["identity"], gateway, 8080)
    for name in SETTINGS:
        for process in (pods[name], pods[f"{name}-migrate"]):
            assert reachable(policies, process, POSTGRES, 5432)
            assert reachable(policies, process, collector, 4317)
            assert not reachable(policies, process, STRANGER, 50051)
        assert reachable(policies, pods[name], NATS, 4222)
        assert not reachable(policies, pods[f"{name}-migrate"], NATS, 4222)
        assert reachable(policies, PROMETHEUS, pods[name], 9464)
        assert not reachable(policies, STRANGER, pods[name], 9464)
        for port in (8081, 9464):  # the health listener is for the kubelet only
            assert not reachable(policies, pods["gateway"], pods[name], port)
    assert not reachable(policies, STRANGER, collector, 4317)
    assert not reachable(policies, collector, STRANGER, 443)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_p4_every_deployment_is_selected_by_its_own_network_policy(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deny = _named(docs, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for doc in (d for d in docs if d["kind"] == "Deployment"):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        own = [
            p["metadata"]["name"]
            for p in policies
            if p["spec"]["podSelector"]
            and _matches(p["spec"]["podSelector"], labels)
            and "Ingress" in _policy_types(p)
        ]
        assert own, f"Deployment/{doc['metadata']['name']} has no ingress policy of its own"


def test_p4_reachability_follows_network_policy_semantics() -> None:
    """The evaluator the policy tests rely on: unselected pods are open, a selected pod only
    to its rules, both ends must allow, named ports resolve on the destination."""
    server = Pod(NAMESPACE, {"app": "server"}, {"grpc": 50051})
    client = Pod(NAMESPACE, {"app": "client"})
    assert reachable([], client, server, 50051)
    allow = {
        "metadata": {"name": "allow", "namespace": NAMESPACE},
        "spec": {
            "podSelector": {"matchLabels": {"app": "server"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                    "ports": [{"port": "grpc"}],
                }
            ],
        },
    }
    deny_egress = {
        "metadata": {"name": "deny", "namespace": NAMESPACE},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"]},
    }
    assert reachable([allow], client, server, 50051)
    assert not reachable([allow], client, server, 8081)
    assert not reachable([allow], Pod("other", {"app": "client"}), server, 50051)
    assert not reachable([allow, deny_egress], client, server, 50051)


def test_p4_examples_match_the_network_policies_and_settings(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """deploy/k8s/examples (not in the overlays) put PostgreSQL, NATS and the ingress where the
    policies and settings expect them, and the Ingress validates strictly."""
    docs = rendered["prod"]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    gateway = _pods(docs)["gateway"]
    examples = K8S / "examples"
    cluster = next(
        d
        for d in yaml.safe_load_all((examples / "cloudnative-pg.yaml").read_text())
        if d["kind"] == "Cluster"
    )
    database = Pod(
        cluster["metadata"]["namespace"], {"cnpg.io/cluster": cluster["metadata"]["name"]}
    )
    assert reachable(policies, gateway, database, 5432)
    assert cluster["spec"]["bootstrap"]["initdb"]["owner"] in " ".join(
        cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"]
    )
    nats = yaml.safe_load((examples / "nats-values.yaml").read_text())["config"]
    assert nats["jetstream"]["enabled"] is True
    nats_url = _config_maps(docs)[_server(docs, "gateway")["envFrom"][0]["configMapRef"]["name"]][
        "HELIOS_NATS_URL"
    ]
    assert nats_url == f"nats://nats.{database.namespace}.svc:4222"
    ingress = yaml.safe_load((examples / "ingress-nginx.yaml").read_text())
    assert _schema_errors([ingress], KUBERNETES_VERSIONS[0]) == []
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "gateway", "port": {"name": "https"}}
    controller = Pod("ingress-nginx", {})
    assert reachable(policies, controller, gateway, _port(_server(docs, "gateway"), "https"))


# -- checkov -----------------------------------------------------------------------------------


def explained_checkov_failures() -> set[tuple[str, str]]:
    """(check id, overlay) pairs the README's "Checkov exceptions" table explains."""
    text = (K8S / "README.md").read_text()
    assert "\n## Checkov exceptions\n" in text, "deploy/k8s/README.md has no checkov section"
    section = text.split("\n## Checkov exceptions\n", 1)[1].split("\n## ", 1)[0]
    pairs = set()
    for check, overlays in re.findall(r"^\| `(CKV2?_K8S_\d+)` \| ([a-z, ]+) \|", section, re.M):
        pairs |= {(check, o.strip()) for o in overlays.split(",")}
    return pairs


def test_p4_checkov_fails_only_the_checks_the_readme_explains(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """checkov (its own venv, offline) over every rendered overlay; each failed check must be
    explained in deploy/k8s/README.md for that overlay, and each explanation must still be
    needed, so the README and the manifests stay in step."""
    if not CHECKOV.exists():
        pytest.fail("checkov is not installed: `make checkov` installs it into .tools/")
    for overlay, docs in rendered.items():
        (tmp_path / f"{overlay}.yaml").write_text(yaml.safe_dump_all(docs))
    done = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--quiet",
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    assert all(r.get("check_type") == "kubernetes" for r in reports)
    assert sum(r["summary"]["passed"] for r in reports) > 0  # it did look at the manifests
    failed = {
        (check["check_id"], Path(check["file_path"]).stem)
        for r in reports
        for check in r["results"].get("failed_checks", [])
    }
    explained = explained_checkov_failures()
    assert explained, "the README lists no checkov exception (or the table moved)"
    assert sorted(failed - explained) == [], "failed checks the README does not explain"
    assert sorted(explained - failed) == [], "README exceptions no check needs any more"


# -- the README's settings list ----------------------------------------------------------------


def test_p4_readme_lists_every_setting_of_every_process() -> None:
    text = (K8S / "README.md").read_text()
    missing = sorted(
        f"HELIOS_{key.upper()}"
        for settings in SETTINGS.values()
        for key in settings.model_fields
        if f"`HELIOS_{key.upper()}`" not in text
    )
    assert missing == []
