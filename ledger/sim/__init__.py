"""The exchange side, for tests and demos: the crash simulator, the demo and its chart."""
