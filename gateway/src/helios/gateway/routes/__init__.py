"""The gateway's explicit routes (browser flows that need cookies, health, well-known files)."""
