"""Zero-shot inputs of either kind behind one interface: settings strings and the null input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from zslab.errors import InvalidChoiceError
from zslab.tasks import INPUT_KINDS, TEXT_TASKS, load_inputs, parse_setting


def test_parse_setting_names_the_valid_kinds():
    assert parse_setting("text|minilm|wordnet_glosses|test") == ("text", "minilm", "wordnet_glosses", "test")
    with pytest.raises(InvalidChoiceError, match="'image', 'text'|\\['image', 'text'\\]"):
        parse_setting("audio|x|y|z")
    with pytest.raises(InvalidChoiceError, match="kind\\|model\\|dataset\\|split"):
        parse_setting("text|minilm")
    assert INPUT_KINDS.names() == ["image", "text"] and "wordnet_glosses" in TEXT_TASKS


def test_unknown_text_task_is_named():
    with pytest.raises(InvalidChoiceError, match="'no_such_task'"):
        load_inputs("text|minilm|no_such_task|test", 5, 0)


def test_image_inputs_of_the_offline_world_have_a_content_free_null_input(zsclip_micro):
    inputs = load_inputs("image|zsclip-micro|zsworld|unseen", 2, 0)
    assert inputs.kind == "image" and len(inputs.labels) == 2 * len(inputs.classes)
    assert inputs.features.shape[0] == len(inputs.labels)
    assert torch.allclose(inputs.features.norm(dim=1), torch.ones(len(inputs.labels)), atol=1e-5)
    assert inputs.null_features.shape == (1, inputs.features.shape[1])
    w = inputs.encode_text(inputs.classes[:2])
    assert w.shape == (2, inputs.features.shape[1]) and np.isfinite(w.numpy()).all()
