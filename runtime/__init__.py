"""The layer below app/, compare/ and serve/: settings read once, the backend registry, the gate
for user-supplied backends and the request limits. Never imports gradio or any package above it."""
