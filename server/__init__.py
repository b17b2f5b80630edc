"""The OpenAI-compatible HTTP service: chat completions with optional self-critic,
legacy completions, `/v1/critique`, models, health, version and metrics, over an
in-process engine.

One folder per endpoint (`chat/`, `completions/`, `critique/`, `meta/`), each with its
protocol, router and serving, all serving through one lifecycle (`serving/base.py`);
the HTTP edge in `edge/`, load (admission, metrics) in `load/`, images in `media/`.
"""

__version__ = "0.1.0"
