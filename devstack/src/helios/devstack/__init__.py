"""Helios local stack: throwaway PostgreSQL and NATS, dev PKI and the six processes."""
