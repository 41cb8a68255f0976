"""napari tests need a real display (Xvfb: `make test` runs pytest under `xvfb-run -a`);
vispy crashes with QT_QPA_PLATFORM=offscreen. Without one, the viewer tests skip and the
rest (layouts, intensities, the worker, alignment) still run."""

from __future__ import annotations

import importlib.util
import os

import pytest

if importlib.util.find_spec("napari_ldl") is None:
    # test_napari_install.py fails and says how to install the plugin; these could not even import
    collect_ignore = ["test_napari_data.py", "test_napari_widget.py"]

_VIEWER_FIXTURES = {"make_napari_viewer", "make_napari_viewer_proxy", "qtbot", "qapp"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    skip = pytest.mark.skip(reason="no display: run under `xvfb-run -a` (as `make test` does) for the napari viewer tests")
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here) and _VIEWER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(skip)


@pytest.fixture
def notifications():
    """Every napari notification dispatched during the test."""
    from napari.utils.notifications import notification_manager

    received = []
    notification_manager.notification_ready.connect(received.append)
    yield received
    notification_manager.notification_ready.disconnect(received.append)
