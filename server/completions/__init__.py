"""`POST /v1/completions`: its protocol, router and serving."""
