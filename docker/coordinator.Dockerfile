# syntax=docker/dockerfile:1
# The coordinator service, `soundfleet coordinator` (jobs API, leasing, /metrics); the same
# image runs the one-shot `soundfleet db migrate` and the simulator.
# Build from the repository root:  docker build -f docker/coordinator.Dockerfile -t soundfleet-coordinator .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: a self-contained venv
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/soundfleet
# Runtime dependencies first (read from pyproject, pinned by constraints.txt) so that a
# source edit does not re-download them: the shared runtime and this role's extras
# (simulator) only, never another role's libraries.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; x = p['optional-dependencies']; print('\n'.join(p['dependencies'] + x['simulator']))" > requirements.txt \
 && /opt/soundfleet/bin/pip install --no-cache-dir -c constraints.txt -r requirements.txt
# Then the distribution itself (the build context is filtered by /.dockerignore).
COPY . .
RUN /opt/soundfleet/bin/pip install --no-cache-dir --no-deps . \
 && /opt/soundfleet/bin/soundfleet --help >/dev/null

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
ARG TINI_VERSION=0.19.0-1+b3
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=${TINI_VERSION} \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 soundfleet \
 && useradd --system --uid 10001 --gid soundfleet --home-dir /home/soundfleet \
      --create-home --shell /usr/sbin/nologin soundfleet
COPY --from=build /opt/soundfleet /opt/soundfleet
# The root filesystem is read-only in Kubernetes: bytecode is compiled at build time and
# whatever is written at run time goes under /tmp or $HOME (emptyDir volumes there).
ENV PATH=/opt/soundfleet/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SOUNDFLEET_DATA_DIR=/tmp/soundfleet \
    SOUNDFLEET_LOG_FORMAT=json \
    SOUNDFLEET_REQUIRE=database_url
USER 10001:10001
WORKDIR /home/soundfleet
EXPOSE 8700
STOPSIGNAL SIGTERM
# No curl in the slim image: the standard library asks /healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8700/healthz', timeout=4)"]
ENTRYPOINT ["tini", "--", "soundfleet"]
CMD ["coordinator", "--host", "0.0.0.0", "--port", "8700"]
