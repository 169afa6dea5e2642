"""The container images' Dockerfiles (deploy/docker) and build context obey the rules that make
them safe to run on the cluster (P4): hadolint, and the rules checked here directly. No Docker
engine runs here, so the images are linted, not built."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
# deployable -> (its folder, its Python module): the fixed names of issue 9.
DEPLOYABLES = {
    "identity": ("services/identity", "identity"),
    "authz": ("services/authz", "authz"),
    "ai-broker": ("services/ai-broker", "ai_broker"),
    "audit": ("services/audit", "audit"),
    "keyvault": ("services/keyvault", "keyvault"),
    "gateway": ("gateway", "gateway"),
}
HEALTH_PORT = "8081"
NON_ROOT_UID = 10001
_PINNED_IMAGE = re.compile(
    r"[a-z0-9][a-z0-9./-]*:\d+\.\d+\.\d+(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?"
)


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        pairs = [p for args in self.all("ENV") for p in shlex.split(args)]
        return dict(pair.split("=", 1) for pair in pairs)


def _instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comment lines dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "a continuation line ends the file"
    out = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        out.append(Instruction(keyword.upper(), " ".join(args.split())))
    return out


def _stages(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for instruction in _instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            assert not words[0].startswith("--"), "FROM --platform is not used"
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{instruction.keyword} before the first FROM"
            stages[-1].instructions.append(instruction)
    return stages


def _dockerfile(deployable: str) -> str:
    return (DOCKER / f"{deployable}.Dockerfile").read_text(encoding="utf-8")


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not the exec (JSON) form: {args}"
    return [str(v) for v in value]


def _copies(stage: Stage) -> list[tuple[list[str], str, list[str]]]:
    """(flags, destination, sources) of each COPY."""
    out = []
    for args in stage.all("COPY"):
        words = shlex.split(args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        out.append((flags, paths[-1], paths[:-1]))
    return out


def _project(folder: str) -> dict[str, object]:
    data = tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))
    project: dict[str, object] = data["project"]
    return project


def _workspace_folders() -> dict[str, str]:
    """Distribution name -> folder, for every workspace member."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    members: list[str] = root["tool"]["uv"]["workspace"]["members"]
    return {str(_project(folder)["name"]): folder for folder in members}


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match is not None, requirement
    return match.group(0).lower().replace("_", "-")


def _workspace_closure(folder: str) -> set[str]:
    """The folder of a distribution and of every workspace distribution it needs, transitively."""
    folders = _workspace_folders()
    seen: set[str] = set()
    todo = [folder]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        requires = _project(current).get("dependencies", [])
        assert isinstance(requires, list)
        for requirement in requires:
            name = _requirement_name(str(requirement))
            if name in folders:
                todo.append(folders[name])
    return seen


def _docker_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker reads it: anchored at the context root, `*` and `?`
    within one path segment, `**` across segments."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            char = pattern[i]
            out += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
            i += 1
    return re.compile(out)


def _ignored(path: str) -> bool:
    """Whether Docker leaves `path` (relative to the root) out of the build context: the last
    pattern matching it or one of its parent folders decides; `!` patterns put it back."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        cleaned = line.removeprefix("!").strip().strip("/")
        rules.append((keep, _docker_pattern(cleaned)))
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for keep, pattern in rules:
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            ignored = not keep
    return ignored


def _pins_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("helios_image_pins", DOCKER / "pins.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


deployables = pytest.mark.parametrize("deployable", sorted(DEPLOYABLES))


def test_p4_one_dockerfile_per_deployable() -> None:
    """P4: exactly one Dockerfile per deployable, named after it."""
    found = {path.name.removesuffix(".Dockerfile") for path in DOCKER.glob("*.Dockerfile")}
    assert found == set(DEPLOYABLES)


@deployables
def test_p4_image_is_multi_stage_on_one_pinned_base(deployable: str) -> None:
    """P4: a builder stage and a runtime stage, both FROM the same base pinned to an exact
    version (never `latest` or a moving tag); the runtime takes only /opt/venv from the builder."""
    stages = _stages(_dockerfile(deployable))
    assert len(stages) == 2
    builder, runtime = stages
    assert builder.name == "builder"
    for stage in stages:
        assert _PINNED_IMAGE.fullmatch(stage.image), stage.image
        assert "latest" not in stage.image
    assert builder.image == runtime.image  # the venv's interpreter path is the same in both
    assert _copies(runtime) == [(["--from=builder"], "/opt/venv", ["/opt/venv"])]


def test_p4_all_images_share_one_base_and_one_uv() -> None:
    """P4: one base image and one uv version for every image, so an upgrade is one change
    everywhere and no image lags behind on security fixes."""
    bases = {s.image for d in DEPLOYABLES for s in _stages(_dockerfile(d))}
    uvs = {m for d in DEPLOYABLES for m in re.findall(r"uv==[\w.]+", _dockerfile(d))}
    assert len(bases) == 1, bases
    assert len(uvs) == 1, uvs


@deployables
def test_p4_builder_pins_its_tools_and_every_third_party_package(deployable: str) -> None:
    """P4: uv at an exact version; wheels only, constrained by the root pyproject's pins, and
    the build fails when an installed package is not pinned."""
    builder = _stages(_dockerfile(deployable))[0]
    runs = " && ".join(builder.all("RUN"))
    assert re.search(r"pip install --no-cache-dir uv==\d+\.\d+\.\d+(\s|$)", runs)
    assert "python pins.py export workspace/pyproject.toml > constraints.txt" in runs
    assert "uv build --wheel --offline" in runs
    install = re.search(r"uv pip install [^&]*", runs)
    assert install is not None
    for flag in ("--constraints constraints.txt", "--only-binary :all:", "--compile-bytecode"):
        assert flag in install.group(0)
    assert "python pins.py check constraints.txt frozen.txt" in runs


@deployables
def test_p4_image_installs_only_its_own_distributions(deployable: str) -> None:
    """P4: the builder copies the deployable's workspace distribution and the workspace
    distributions its pyproject needs (transitively), nothing else from the repository."""
    folder, _ = DEPLOYABLES[deployable]
    builder = _stages(_dockerfile(deployable))[0]
    copied: set[str] = set()
    for flags, destination, sources in _copies(builder):
        assert not flags
        if destination.startswith("dist/"):
            (source,) = sources
            assert destination == "dist/" + source.rsplit("/", 1)[-1]
            copied.add(source)
        else:
            assert (sources, destination) in (
                (["pyproject.toml"], "workspace/pyproject.toml"),
                (["deploy/docker/pins.py"], "pins.py"),
            )
    assert copied == _workspace_closure(folder)


@deployables
def test_p4_runtime_runs_as_a_numeric_non_root_user(deployable: str) -> None:
    """P4: the last USER is numeric uid:gid, not 0 (Kubernetes runAsNonRoot can verify it)."""
    runtime = _stages(_dockerfile(deployable))[-1]
    user = runtime.all("USER")[-1]
    assert re.fullmatch(r"\d+:\d+", user), user
    uid, gid = (int(part) for part in user.split(":"))
    assert (uid, gid) == (NON_ROOT_UID, NON_ROOT_UID)
    runs = " ".join(runtime.all("RUN"))
    assert f"useradd --system --uid {uid} --gid {gid}" in runs
    # every file is in place before USER: owned by root, so the process cannot change it
    assert [i.keyword for i in runtime.instructions].index("USER") > max(
        n for n, i in enumerate(runtime.instructions) if i.keyword in ("RUN", "COPY")
    )


@deployables
def test_p4_runtime_has_no_build_tools_and_writes_nothing(deployable: str) -> None:
    """P4: no package manager step, pip removed, bytecode compiled at build time and never
    written at run time, unbuffered logs: the container runs on a read-only root fs."""
    runtime = _stages(_dockerfile(deployable))[-1]
    runs = " ".join(runtime.all("RUN"))
    assert not re.search(r"\b(apt-get|apt|apk|dnf|yum|gcc|make)\b", runs)
    assert "python -m pip uninstall --yes --no-cache-dir pip setuptools wheel" in runs
    assert not runtime.all("VOLUME")
    assert not runtime.all("ADD")
    env = runtime.env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")


@deployables
def test_p4_entrypoint_runs_its_own_module(deployable: str) -> None:
    """P4: `python -m helios.<module>` with `serve` as the default command (`migrate` replaces
    it in the migration Job); the module has a __main__."""
    folder, module = DEPLOYABLES[deployable]
    runtime = _stages(_dockerfile(deployable))[-1]
    assert _exec_form(runtime.all("ENTRYPOINT")[-1]) == ["python", "-m", f"helios.{module}"]
    assert _exec_form(runtime.all("CMD")[-1]) == ["serve"]
    assert (ROOT / folder / "src" / "helios" / module / "__main__.py").is_file()


@deployables
def test_p4_healthcheck_uses_the_health_probe(deployable: str) -> None:
    """P4: HEALTHCHECK runs helios.kernel.health_probe: gRPC health on the plaintext health
    listener the image enables (HELIOS_HEALTH_PORT), or the gateway's /healthz."""
    runtime = _stages(_dockerfile(deployable))[-1]
    (check,) = runtime.all("HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert "--timeout=" in options
    assert "--interval=" in options
    argv = _exec_form(command)
    assert argv[:3] == ["python", "-m", "helios.kernel.health_probe"]
    exposed = set(" ".join(runtime.all("EXPOSE")).split())
    if deployable == "gateway":
        assert argv[3:] == ["--http", "http://127.0.0.1:8080/healthz"]
        assert runtime.env()["HELIOS_HTTP_HOST"] == "0.0.0.0"
        assert runtime.env()["HELIOS_METRICS_PORT"] == "9464"  # /metrics never on the public port
        assert exposed == {"8080", "9464"}
    else:
        assert argv[3:] == ["--port", HEALTH_PORT]
        assert runtime.env()["HELIOS_HEALTH_PORT"] == HEALTH_PORT
        assert exposed == {"50051", HEALTH_PORT, "9464"}


@deployables
def test_p4_image_labels_name_the_deployable_and_its_version(deployable: str) -> None:
    """P4: the OCI labels name the deployable and carry its distribution's version."""
    folder, _ = DEPLOYABLES[deployable]
    runtime = _stages(_dockerfile(deployable))[-1]
    labels = dict(pair.split("=", 1) for args in runtime.all("LABEL") for pair in shlex.split(args))
    assert labels["org.opencontainers.image.title"] == f"helios-{deployable}"
    assert labels["org.opencontainers.image.version"] == _project(folder)["version"]


@deployables
def test_p4_no_remote_add_and_no_secret_in_the_image(deployable: str) -> None:
    """P4: COPY only (no ADD, which fetches URLs and unpacks archives); no key, certificate or
    env file copied; no secret-looking ENV or ARG baked into a layer."""
    text = _dockerfile(deployable)
    assert not re.search(r"https?://(?!127\.0\.0\.1[:/])", text)
    for stage in _stages(text):
        assert not stage.all("ADD")
        for _, _, sources in _copies(stage):
            for source in sources:
                assert not re.search(r"(\.pem|\.key|\.crt|\.env|secret|\.git)\b", source)
        names = [*stage.env(), *(a.split("=", 1)[0] for a in stage.all("ARG"))]
        assert not [n for n in names if re.search("PASSWORD|SECRET|TOKEN|KEY", n.upper())]


def test_p4_build_context_excludes_vcs_envs_tools_tests_and_keys() -> None:
    """P4: .dockerignore keeps the repository's git data, virtualenvs, tools, tests and any key
    out of the build context."""
    for path in (
        ".git/config",
        ".venv/bin/python",
        ".tools/uv-venv/bin/uv",
        ".tools/hadolint-venv/bin/hadolint",
        "tests/e2e/conftest.py",
        "libs/kernel/tests/unit/test_settings.py",
        "services/identity/tests/integration/conftest.py",
        "gateway/tests/unit/test_tracing.py",
        "services/keyvault/src/helios/keyvault/__pycache__/wiring.cpython-311.pyc",
        "services/identity/dev.key",
        "libs/kernel/ca.pem",
        "services/audit/.env",
        "devstack/pyproject.toml",
        "libs/push-device/pyproject.toml",
        "deploy/k8s/README.md",
    ):
        assert _ignored(path), path


@deployables
def test_p4_build_context_holds_what_the_dockerfile_copies(deployable: str) -> None:
    """P4: every source a Dockerfile copies is in the build context (and its sources too)."""
    builder = _stages(_dockerfile(deployable))[0]
    for _, _, sources in _copies(builder):
        for source in sources:
            assert (ROOT / source).exists(), source
            if (ROOT / source).is_dir():
                assert not _ignored(f"{source}/pyproject.toml"), source
                assert not _ignored(f"{source}/src/helios/x.py"), source
            else:
                assert not _ignored(source), source


def test_p4_pins_export_the_root_constraints() -> None:
    """P4: the builder's constraints are the root pyproject's pinned list, one per line."""
    pins = _pins_module()
    lines = pins.constraint_lines((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert lines
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+==\S+", line) for line in lines)
    assert "grpcio==" in "\n".join(lines)


def test_p4_pins_check_names_every_unpinned_package() -> None:
    """P4: the freeze check passes pinned packages and the workspace's own wheels, and names
    anything else (a new dependency nobody pinned, or another version)."""
    pins = _pins_module()
    constraints = ["grpcio==1.85.3", "Typing_Extensions==4.16.0"]
    frozen = [
        "grpcio==1.85.3",
        "typing-extensions==4.16.0",
        "helios-kernel @ file:///build/wheels/helios_kernel-0.1.0-py3-none-any.whl",
        "opentelemetry-proto==1.45.2",
        "grpcio-tools==1.85.1",
    ]
    assert pins.unpinned(frozen, constraints) == [
        "opentelemetry-proto==1.45.2",
        "grpcio-tools==1.85.1",
    ]
    assert pins.unpinned(["grpcio==1.86.0"], constraints) == ["grpcio==1.86.0"]


def _hadolint() -> str:
    local = ROOT / ".tools" / "hadolint-venv" / "bin" / "hadolint"
    found = str(local) if local.is_file() else shutil.which("hadolint")
    assert found, "hadolint is not installed: `make tools` installs it into .tools/"
    return found


def test_p4_hadolint_passes_every_dockerfile() -> None:
    """P4: hadolint (deploy/docker/hadolint.yaml: every finding fails, no inline ignores)
    reports nothing on any Dockerfile."""
    files = sorted(str(p) for p in DOCKER.glob("*.Dockerfile"))
    result = subprocess.run(
        [_hadolint(), "--no-color", "--config", str(DOCKER / "hadolint.yaml"), *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_p4_hadolint_with_our_config_refuses_a_bad_dockerfile(tmp_path: Path) -> None:
    """P4: the lint is not vacuous: a root, `latest`, unpinned Dockerfile fails with its rules."""
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install uv\nUSER root\n", encoding="utf-8")
    result = subprocess.run(
        [_hadolint(), "--no-color", "--config", str(DOCKER / "hadolint.yaml"), str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    for rule in ("DL3007", "DL3013", "DL3002", "DL3049"):
        assert rule in result.stdout
