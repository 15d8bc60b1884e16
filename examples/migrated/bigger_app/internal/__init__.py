"""Routers shared with other apps of the organisation."""
