"""Pydantic models of the HTTP API: requests validated at the boundary, responses shaped
as OpenAI's."""
