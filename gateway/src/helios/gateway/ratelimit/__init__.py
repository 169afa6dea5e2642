"""Rate limits per client IP and per principal, shared by every gateway replica."""
