"""`POST /v1/chat/completions`: its protocol, router and serving."""
