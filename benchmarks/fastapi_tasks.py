"""Requests/s of a FastAPI endpoint scheduling one background task: qakeapi's task system in
a FastAPI app (``TaskMiddleware`` + ``tasks_lifespan`` + ``add_background_task``) vs the same
app with FastAPI's own ``BackgroundTasks``, driven by the same load generator in the same run
(in-process and under uvicorn, as benchmarks/http_requests.py does).

    python benchmarks/fastapi_tasks.py [--quick]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps"))

import argparse

import fastapi_apps
from http_requests import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    names = ("fastapi", "qakeapi")
    apps = {"fastapi": fastapi_apps.fastapi_tasks_app,
            "qakeapi": fastapi_apps.qakeapi_tasks_app}
    compare(names, apps, {name: f"fastapi_apps:{name}_tasks_app" for name in names}, args)
    print("ratio target >= 0.95 (qakeapi's tasks in FastAPI / FastAPI's BackgroundTasks)")


if __name__ == "__main__":
    main()
