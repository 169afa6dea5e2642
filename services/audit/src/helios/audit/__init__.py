"""Helios audit service: the immutable, tamper-evident audit log."""
