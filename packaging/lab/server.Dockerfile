# The lab server image: `spheroseg server` (GraphQL, uploads, image delivery, the job dispatcher) and the
# Dask scheduler (`dask scheduler`), which compose.yaml runs from the same image so that its Dask is the
# replicas'. No torch: the server never segments (the ResUNet's card is read without it).
# Build from the repository root: docker build -f packaging/lab/server.Dockerfile -t spheroseg-server .

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cluster cluster
COPY server server
COPY workbench workbench
RUN python -m venv /opt/spheroseg \
    && /opt/spheroseg/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/spheroseg/bin/pip install --no-cache-dir ".[server,cluster]"

FROM python:3.11-slim
# uid 101: the same as nginx's worker in the nginx image, so the replicas may delete entries of the edge's
# cache (a volume both mount) when an image changes.
RUN groupadd --system --gid 101 spheroseg \
    && useradd --system --uid 101 --gid 101 --home-dir /var/lib/spheroseg --create-home spheroseg
COPY --from=build /opt/spheroseg /opt/spheroseg
COPY resources/models /opt/spheroseg/models
ENV PATH=/opt/spheroseg/bin:$PATH \
    SPHEROSEG_MODEL_DIR=/opt/spheroseg/models \
    SPHEROSEG_DATA_DIR=/var/lib/spheroseg \
    SPHEROSEG_ENVIRONMENT=production \
    PYTHONUNBUFFERED=1
USER spheroseg
WORKDIR /var/lib/spheroseg
EXPOSE 8000
# The replicas; compose.yaml and the systemd units name the same command.
CMD ["spheroseg", "server", "serve", "--host", "0.0.0.0", "--port", "8000"]
