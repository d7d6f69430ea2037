"""Fixtures for the model tests: the tiny config and a seeded tiny model."""

from __future__ import annotations

import pytest
import torch

from uniaudio.model.config import UniAudioConfig, preset
from uniaudio.model.network import UniAudioModel


@pytest.fixture
def tiny_config() -> UniAudioConfig:
    return preset("tiny")


@pytest.fixture
def tiny_model(tiny_config: UniAudioConfig) -> UniAudioModel:
    torch.manual_seed(0)
    return UniAudioModel(tiny_config).eval()
