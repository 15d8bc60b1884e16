"""Runnable example apps (see README.md)."""
