"""Core pieces of qakeapi: in-process background tasks and per-request task holding."""
