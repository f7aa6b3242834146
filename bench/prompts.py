"""The fixed prompt set the engine and precision benchmarks share."""

from __future__ import annotations

PROMPTS: tuple[str, ...] = (
    "A train travels 240 km in 3 hours. If it increases its speed by 20 km/h, "
    "how long would the same journey take?",
    "Write a Python function that returns the n-th Fibonacci number using dynamic programming.",
    "Explain in two sentences why the sky is blue.",
    "List three differences between a list and a tuple in Python.",
    "What is the greatest common divisor of 48 and 180? Show the steps.",
    "All cats are mammals. Some mammals are carnivores. Can we conclude that some cats are carnivores?",
    "Give me a short haiku about autumn leaves.",
    "Translate 'good morning, how are you?' into French and Spanish.",
)

SYSTEM = "You are a helpful assistant."

FOLLOW_UPS: tuple[str, ...] = (
    "Can you say that more briefly?",
    "Now give an example.",
    "Why is that?",
    "What would change if the numbers doubled?",
    "Summarise our conversation in one sentence.",
    "Give one more detail.",
    "Is there a common mistake here?",
)
