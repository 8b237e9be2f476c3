"""Dependencies shared by the routes (tests override them through ``app.dependency_overrides``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.batching import InferenceQueue
from api.registry import Registry
from api.settings import Settings, get_settings
from api.submissions import SubmissionStore


def get_registry(request: Request) -> Registry:
    return request.app.state.registry


def get_inference(request: Request) -> InferenceQueue:
    return request.app.state.inference


def get_submissions(request: Request) -> SubmissionStore:
    return request.app.state.submissions


InferenceDep = Annotated[InferenceQueue, Depends(get_inference)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SubmissionsDep = Annotated[SubmissionStore, Depends(get_submissions)]
