"""The gateway's own small schema: shared rate-limit counters."""
