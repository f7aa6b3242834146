"""Model files: where they live (model_store), building them (convert, gguf_blocks) and the
native ops they run on (native_ops, native/). Imports only backends/ (its errors)."""
