"""Dependencies shared by the routes (tests override them through ``app.dependency_overrides``).

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool,
and three thread hand-offs per request cost more CPU than the model call itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.settings import Settings, get_settings
from models.loading import LoadedModels
from store.db import Database


async def get_models(request: Request) -> LoadedModels:
    return request.app.state.models


async def get_database(request: Request) -> Database:
    return request.app.state.database


def get_session(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    # Sync on purpose: only sync routes use it, and they run in the thread pool anyway.
    with database.session() as session:
        yield session


async def settings() -> Settings:
    return get_settings()


ModelsDep = Annotated[LoadedModels, Depends(get_models)]
SettingsDep = Annotated[Settings, Depends(settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, Depends(get_session)]
