# syntax=docker/dockerfile:1
#
# One image for every Herald component. The entry point is the operator; the chart runs the
# others by setting the container's `command`:
#   operator  herald-operator  (the default)
#   sender    herald-sender
#   bot       herald-bot
#   api       herald-api       (transactional messages over HTTP, on 8080)
# Build:  docker build -t herald:0.1.0 .
#
# The base is pinned by exact tag and by digest, so a rebuild gets the same Python and Debian
# until someone moves the pin on purpose.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# --- build: Herald's wheel and the wheels of its dependencies ---------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# The whole context (.dockerignore keeps caches, tests and the chart out): pyproject.toml
# decides which folders become the `herald` packages.
COPY . .
RUN pip wheel --wheel-dir /wheels .

# --- runtime: a virtualenv with the wheels, run as an unprivileged user ----------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="herald" \
      org.opencontainers.image.description="Telegram broadcasts managed as Kubernetes custom resources" \
      org.opencontainers.image.licenses="Apache-2.0"
# The root filesystem is read-only in the cluster: bytecode is compiled at install time.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/herald/bin:$PATH
RUN groupadd --system --gid 10001 herald \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin herald
# The wheels are mounted, not copied, so they add no layer to the image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/herald \
    && /opt/herald/bin/pip install --no-index --find-links=/wheels herald \
    && /opt/herald/bin/pip uninstall --yes pip
USER 10001:10001
WORKDIR /tmp
# Operator liveness and herald-api (each in its own pod), then the metrics ports of the
# operator, sender and bot.
EXPOSE 8080 9101 9102 9103
ENTRYPOINT ["herald-operator"]
