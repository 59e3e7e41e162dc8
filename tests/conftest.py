import os
from pathlib import Path

import pytest
import torch

# Keep the suite light on a 2-core machine.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


@pytest.fixture
def media_dir() -> Path:
    if not MEDIA.is_dir():
        pytest.skip("../shared/media is not present")
    return MEDIA
