"""Apps moved over to qakeapi from QakeAPI 1.3.1 and FastAPI: see docs/migrating.md."""
