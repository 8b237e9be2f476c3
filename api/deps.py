"""Dependencies shared by the routes (tests override them through ``app.dependency_overrides``).

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool,
and three thread hand-offs per request cost more CPU than the model call itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.settings import Settings, get_settings
from api.submissions import SubmissionStore
from models.loading import Store


async def get_store(request: Request) -> Store:
    return request.app.state.models


async def get_submissions(request: Request) -> SubmissionStore:
    return request.app.state.submissions


async def settings() -> Settings:
    return get_settings()


ModelsDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(settings)]
SubmissionsDep = Annotated[SubmissionStore, Depends(get_submissions)]
