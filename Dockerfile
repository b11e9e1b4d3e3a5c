# One slim, non-root image for every Doraflow command (api, process, collect, operator, migrate, up).
# syntax=docker/dockerfile:1.7

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/doraflow
COPY pyproject.toml README.md ./
COPY services ./services
COPY operator ./operator
# Only the project and its runtime dependencies: no test extras in the image.
RUN /opt/doraflow/bin/pip install .

FROM python:3.11-slim-bookworm
# git: the local-git collector; tini: signal forwarding so SIGTERM reaches the process group.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 doraflow \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin doraflow
COPY --from=build /opt/doraflow /opt/doraflow
COPY migrations /app/migrations
ENV PATH=/opt/doraflow/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DORAFLOW_MIGRATIONS_DIR=/app/migrations \
    DORAFLOW_HOME=/var/cache/doraflow
USER 10001:10001
EXPOSE 8080 8000 8001 8002 8081
ENTRYPOINT ["/usr/bin/tini", "--", "doraflow"]
CMD ["api", "--host", "0.0.0.0", "--port", "8080"]
