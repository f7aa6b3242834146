"""The in-process engines: one scheduler thread per model, the ONNX Runtime GenAI and llama.cpp
engines it drives, and what they share (sampling, stops, tool-call parsing, chat prompts).
Imports backends/ (the contract) and models/ (the files they run); never the UI."""
