"""Images in requests: checked against the limits, then fetched and decoded."""
