"""The two apps the JSON-body section of benchmarks/http_requests.py compares: the same
endpoint validating the same Pydantic model from the request body, in qakeapi and FastAPI."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, Field

from qakeapi import QakeAPI


class Order(BaseModel):
    customer: str = Field(min_length=1)
    sku: str
    qty: int = Field(gt=0)
    price: float = Field(ge=0)
    tags: list[str] = []


BODY = (b'{"customer": "ada", "sku": "pen-42", "qty": 3, "price": 1.25,'
        b' "tags": ["gift", "express"]}')

qakeapi_json_app = QakeAPI()


@qakeapi_json_app.post("/orders")
async def create_order(order: Order) -> dict[str, object]:
    return {"customer": order.customer, "total": order.qty * order.price}


fastapi_json_app = FastAPI()


@fastapi_json_app.post("/orders")
async def fastapi_create_order(order: Order) -> dict[str, object]:
    return {"customer": order.customer, "total": order.qty * order.price}
