# recforge serve in a container: build the wheel in one stage, serve a mounted model in a slim one.
#
#   docker build -t recforge .
#   docker run --rm -p 8000:8000 -v "$PWD/model:/model:ro" -v recforge-events:/data recforge
#
# /model is a folder written by recforge.serving.save_artifact (read-only is fine: it is only
# read, and re-read when its manifest changes). Events go to SQLite in /data unless the command
# passes --events-url postgresql://... (see docker-compose.yml).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml CMakeLists.txt README.md ./
COPY cpp ./cpp
COPY cuda ./cuda
COPY python ./python
# the wheel (C++/OpenMP core; no CUDA toolkit here) and wheels of everything `serve` needs
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[serve,cli]"

FROM ${PYTHON_IMAGE} AS runtime
# libgomp1: the OpenMP runtime of the compiled kernels
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 recforge \
 && useradd --system --uid 10001 --gid recforge --home-dir /home/recforge --create-home recforge \
 && mkdir -p /data /model \
 && chown recforge:recforge /data
COPY --from=build /wheels /wheels
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-index --find-links /wheels "recforge[serve,cli]" \
 && rm -rf /wheels
ENV PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1
USER 10001:10001
WORKDIR /home/recforge
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["recforge"]
CMD ["serve", "/model", "--host", "0.0.0.0", "--port", "8000", "--events-url", "sqlite:////data/events.sqlite3"]
