"""The broker's use cases: AI sessions, the action registry, invocations, prompts."""
