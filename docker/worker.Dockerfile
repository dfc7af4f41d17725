# syntax=docker/dockerfile:1
# The crawler worker, `soundfleet worker`, with Debian's Chromium for the browser step of
# client_id discovery (Playwright drives it; Playwright's own browser download is not used).
# Build from the repository root:  docker build -f docker/worker.Dockerfile -t soundfleet-worker .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: a self-contained venv
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/soundfleet
# Runtime dependencies first (read from pyproject, pinned by constraints.txt) so that a
# source edit does not re-download them: the shared runtime and this role's extras
# (worker, impersonate) only, never another role's libraries.
COPY pyproject.toml constraints.txt ./
# The impersonate extra (curl_cffi) lets SOUNDFLEET_WORKER_TRANSPORT pick the browser-TLS
# client without a rebuild.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; x = p['optional-dependencies']; print('\n'.join(p['dependencies'] + x['worker'] + x['impersonate']))" > requirements.txt \
 && /opt/soundfleet/bin/pip install --no-cache-dir -c constraints.txt -r requirements.txt
# Then the distribution itself (the build context is filtered by /.dockerignore).
COPY . .
RUN /opt/soundfleet/bin/pip install --no-cache-dir --no-deps . \
 && /opt/soundfleet/bin/soundfleet --help >/dev/null

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
# How versions are chosen: tini and the fonts change only with a Debian point release and
# are pinned. Chromium is not: bookworm ships it through the security archive, which keeps
# only the newest build, so any pin stops building within weeks (156.0.8078.79 did). The
# build takes the current security build and records it in /etc/soundfleet-chromium;
# reproduce an image by its digest, not by rebuilding.
ARG FONTS_VERSION=1:1.07.4-11
ARG TINI_VERSION=0.19.0-1+b3
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      chromium \
      fonts-liberation=${FONTS_VERSION} \
      tini=${TINI_VERSION} \
 && dpkg-query -W -f='${Version}\n' chromium > /etc/soundfleet-chromium \
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
    SOUNDFLEET_CHROMIUM=/usr/bin/chromium \
    SOUNDFLEET_REQUIRE=database_url,api_key \
    SOUNDFLEET_COORDINATOR_URL=http://coordinator:8700
USER 10001:10001
WORKDIR /home/soundfleet
EXPOSE 9108
# The coordinator comes from the environment, not a flag, so that the HEALTHCHECK (which
# gets no flags) asks the same coordinator as the worker.
# SIGTERM starts the drain: stop leasing, checkpoint cursors, finish or release the leases
# within --grace seconds. tini forwards it to soundfleet and reaps Chromium's children.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["soundfleet", "worker", "--check"]
ENTRYPOINT ["tini", "--", "soundfleet"]
CMD ["worker", "--concurrency", "8", "--grace", "30", "--metrics-port", "9108"]
