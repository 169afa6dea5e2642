# syntax=docker/dockerfile:1
# helios/gateway: the HTTP edge in front of the gRPC services (`python -m helios.gateway`).
# Build from the repository root (the build context; .dockerignore keeps it to the sources):
#   docker build -f deploy/docker/gateway.Dockerfile -t helios/gateway:0.1.0 .
# Listens on HTTP 8080 (HELIOS_HTTP_PORT; /healthz, /readyz, /metrics on the same port).
# Runs as uid 10001 on a read-only root file system; `migrate` instead of `serve` upgrades its schema.

# Builder: wheels of this deployable's workspace distributions only, installed into /opt/venv with
# every third-party package at the version pinned by the root pyproject's constraint-dependencies.
FROM python:3.11.14-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /build
COPY pyproject.toml workspace/pyproject.toml
COPY deploy/docker/pins.py pins.py
COPY libs/proto dist/proto
COPY libs/kernel dist/kernel
COPY gateway dist/gateway
# uv builds with its bundled uv_build backend (--offline: nothing else is fetched for it); the
# install takes wheels only, and the freeze check fails the build on any package left unpinned.
RUN python pins.py export workspace/pyproject.toml > constraints.txt \
    && for dist in dist/*; do uv build --wheel --offline --out-dir wheels "$dist"; done \
    && uv venv /opt/venv --python /usr/local/bin/python3.11 \
    && uv pip install --python /opt/venv/bin/python --constraints constraints.txt \
        --only-binary :all: --compile-bytecode wheels/*.whl \
    && uv pip freeze --python /opt/venv/bin/python > frozen.txt \
    && python pins.py check constraints.txt frozen.txt

# Runtime: the same base without pip, the virtualenv, a numeric non-root user; nothing is written
# at run time (bytecode is compiled in the builder; /tmp is the only writable place a pod mounts).
FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="helios-gateway" \
      org.opencontainers.image.description="Helios gateway: the HTTP edge in front of the gRPC services" \
      org.opencontainers.image.version="0.1.0"
RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
    && groupadd --system --gid 10001 helios \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin helios
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HELIOS_HTTP_HOST=0.0.0.0 \
    HELIOS_METRICS_PORT=9464
USER 10001:10001
EXPOSE 8080 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "helios.kernel.health_probe", "--http", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["python", "-m", "helios.gateway"]
CMD ["serve"]
