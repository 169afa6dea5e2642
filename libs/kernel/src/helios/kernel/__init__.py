"""Helios kernel: the shared plumbing every Helios service is built on."""
