"""Load: admission, capacity, the queue probe, stall detection, metrics, cancellation."""
