"""Thin routers: parse, authorise, admit, hand over to a service, shape the reply."""
