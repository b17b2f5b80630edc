"""What every endpoint shares: the lifecycle base (`base.EndpointServing`), the served
model names, ids, the judge's fit, the self-critic defaults, token and sampling checks."""
