# syntax=docker/dockerfile:1
#
# hardener admission webhook image.
#
#   docker build -t registry.example.com/hardener:0.1.0 .
#
# Stage "build" turns the source tree into the compiled wheel (HARDENER_COMPILE=1: the engine,
# the rules and the Pod Security Standards evaluator compiled with mypyc, docs/build.md) and
# installs that wheel, with its dependencies, into a virtual environment at /opt/hardener. The
# runtime stage copies only that environment onto the same base image: no compiler, no source
# tree, no build tools.
#
# The base is pinned by version tag and by the digest of its multi-architecture index. To move
# to a newer patch release, update both (e.g. `docker buildx imagetools inspect
# python:3.11.14-slim-bookworm` prints the index digest).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HARDENER_COMPILE=1
# The C compiler for mypyc's output (the image has the Python headers). Versions come from the
# Debian release the pinned base image is built on; the compiler never reaches the runtime.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY _build ./_build
COPY hardener ./hardener
# The last step fails the build unless the installed hardener is the compiled one.
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/hardener \
    && /opt/hardener/bin/python -m pip install --no-cache-dir --compile /wheels/hardener-*.whl \
    && /opt/hardener/bin/python -m pip uninstall --yes pip \
    && /opt/hardener/bin/python -c "import sys; from hardener.cli import variant; sys.exit(variant() != 'compiled')" \
    && /opt/hardener/bin/hardener --version

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="hardener" \
      org.opencontainers.image.description="Kubernetes admission webhook that hardens pods" \
      org.opencontainers.image.licenses="Apache-2.0"
# The root filesystem is read-only in the cluster: bytecode was compiled at build time and
# nothing may try to write it; temporary files and HOME go to the emptyDir mounted at /tmp.
ENV PATH=/opt/hardener/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    HOME=/tmp
COPY --from=build /opt/hardener /opt/hardener
# Numeric, so that runAsNonRoot can verify it without an /etc/passwd entry.
USER 65532:65532
EXPOSE 8443 9090
# Exec form: no shell runs, the server is PID 1 and gets SIGTERM directly.
ENTRYPOINT ["hardener", "serve"]
