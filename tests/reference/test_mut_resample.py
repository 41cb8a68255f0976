"""The classical resampler's one user-facing error (mutation testing found it unpinned): a kernel
name it does not know gets a one-line message that lists the ones it does."""

from __future__ import annotations

import pytest
import torch

from ldl_video.resample import resize


def test_unknown_kernel_names_the_choices() -> None:
    with pytest.raises(ValueError) as caught:
        resize(torch.zeros(1, 1, 4, 4), 8, 8, kernel="nearest")
    message = str(caught.value)
    assert "\n" not in message
    assert "'nearest'" in message and "bicubic, lanczos" in message
