"""The HTTP edge: the request-context middleware, errors, API keys, SSE framing."""
