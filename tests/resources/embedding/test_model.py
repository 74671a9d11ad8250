import torch
from transformers.utils import logging as hf_logging

from resources.embedding.model import EncoderModel
from resources.tokenizer.model_source import resolve_model_path


def test_a_model_loads_without_a_progress_bar_and_leaves_the_setting_as_it_was(capfd):
    assert hf_logging.is_progress_bar_enabled()
    model = EncoderModel(resolve_model_path(), torch.device("cpu"), torch.float32)

    assert model.dimension == 384
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()
