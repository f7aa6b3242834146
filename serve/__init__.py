"""The engine server: any Backend served over an OpenAI-compatible HTTP API (no gradio here).

protocol.py   OpenAI request models and pure request/response/chunk builders
metrics.py    Prometheus text-format counters and histograms
server.py     create_app(backend, model_id=...): the Starlette app
threaded.py   run the app with uvicorn in a background thread (tests, benchmark)
cli.py        `slm-playground engine`: the in-process ONNX model on a port
bench.py      N concurrent clients against a server, aggregate tokens/s
spaces.py     which model a Hugging Face Space runs
safety.py     public-deployment guards: URL allowlist, secret redaction in logs
"""
