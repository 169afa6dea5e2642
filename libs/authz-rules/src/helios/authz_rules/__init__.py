"""Authorization rules shared by authz and in-process callers: keys, scopes, decisions, plans."""
