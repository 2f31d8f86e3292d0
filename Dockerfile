# micro: one image for every service; the service is chosen by the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MICRO_HOME=/micro

RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin micro

WORKDIR /app
# The CPU build of torch first, pinned: the default wheel pulls gigabytes of CUDA.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY micro ./micro
# The `ray` extra: `docker compose --profile ray` runs a Ray head and workers from this image.
RUN pip install ".[ray]" \
    && mkdir -p /micro/data /micro/checkpoints /micro/validation /micro/live /micro/monitoring \
    && chown -R micro:micro /micro

USER micro
WORKDIR /micro

# MICRO_SERVICE (trainer | validator | live) is set per service in docker-compose.yml.
HEALTHCHECK --interval=60s --timeout=20s --start-period=180s --retries=3 \
    CMD micro health "${MICRO_SERVICE:-trainer}" || exit 1

ENTRYPOINT ["micro"]
CMD ["--help"]
