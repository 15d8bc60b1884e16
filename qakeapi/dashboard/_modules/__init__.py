"""The dashboard's internals; the public entry point is :func:`qakeapi.dashboard.dashboard`."""
