"""The OpenAI-compatible HTTP service: chat completions with optional self-critic,
`/v1/critique`, models, health, version and metrics, over an in-process engine."""

__version__ = "0.1.0"
