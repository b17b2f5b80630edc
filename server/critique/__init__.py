"""`POST /v1/critique`: its protocol, router and serving."""
