"""The HTTP API's shared pydantic pieces: the request base (unknown fields refused), the
fields chat and completions share, chat messages, validated field types, and what every
answer carries (usage, finish reason). Each endpoint's own models are in its folder."""
