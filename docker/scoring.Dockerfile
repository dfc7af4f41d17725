# syntax=docker/dockerfile:1
# Scoring jobs, `soundfleet score network|spam|virality|revisit`: run to completion (a
# Kubernetes CronJob or `docker compose run scoring score spam`).
# Build from the repository root:  docker build -f docker/scoring.Dockerfile -t soundfleet-scoring .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: a self-contained venv
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/soundfleet
# Runtime dependencies first (read from pyproject, pinned by constraints.txt) so that a
# source edit does not re-download them: the shared runtime and this role's extras
# (scoring) only, never another role's libraries.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; x = p['optional-dependencies']; print('\n'.join(p['dependencies'] + x['scoring']))" > requirements.txt \
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
# matplotlib wants a writable config dir for its font cache.
# The root filesystem is read-only in Kubernetes: bytecode is compiled at build time and
# whatever is written at run time goes under /tmp or $HOME (emptyDir volumes there).
ENV PATH=/opt/soundfleet/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SOUNDFLEET_DATA_DIR=/tmp/soundfleet \
    SOUNDFLEET_LOG_FORMAT=json \
    MPLCONFIGDIR=/tmp/matplotlib \
    SOUNDFLEET_REQUIRE=database_url
USER 10001:10001
WORKDIR /home/soundfleet
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "soundfleet"]
CMD ["score", "--help"]
