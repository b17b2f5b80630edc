"""The logic behind each endpoint, between the pydantic models and `critic_loop`."""
