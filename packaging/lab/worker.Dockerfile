# A GPU segmentation worker: the ResUNet on CUDA, run by `dask worker` with the GPU=1 resource.
# compose.yaml starts one container per GPU, each shown only its own device by the NVIDIA runtime.
# Build from the repository root: docker build -f packaging/lab/worker.Dockerfile -t spheroseg-worker .

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cluster cluster
COPY server server
COPY workbench workbench
# PyPI's torch wheel for Linux x86_64 is its CUDA build (the CUDA libraries come as nvidia-* wheels; the
# host's driver comes in through the NVIDIA runtime). The check fails the build on a CPU-only wheel.
RUN python -m venv /opt/spheroseg \
    && /opt/spheroseg/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/spheroseg/bin/pip install --no-cache-dir "torch==2.13.0" \
    && /opt/spheroseg/bin/python -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'torch is a CPU build')" \
    && /opt/spheroseg/bin/pip install --no-cache-dir ".[worker]"

FROM python:3.11-slim
RUN groupadd --system --gid 10001 spheroseg \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/spheroseg --create-home spheroseg
COPY --from=build /opt/spheroseg /opt/spheroseg
COPY resources/models /opt/spheroseg/models
ENV PATH=/opt/spheroseg/bin:$PATH \
    SPHEROSEG_MODEL_DIR=/opt/spheroseg/models \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PYTHONUNBUFFERED=1
USER spheroseg
WORKDIR /var/lib/spheroseg
EXPOSE 8790
# compose.yaml gives each worker its own name and device (NVIDIA_VISIBLE_DEVICES, device_ids).
CMD ["dask", "worker", "tcp://scheduler:8786", "--nthreads", "1", "--resources", "GPU=1", "--dashboard-address", ":8790"]
