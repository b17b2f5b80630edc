"""Helpers the tests share: fakes, fixtures' building blocks and stand-in servers.

Every test imports them one way, `from tests.support.<module> import ...`, so a helper is
loaded once, as one module (conftest.py files hold fixtures only)."""
