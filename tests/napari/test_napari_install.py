"""The plugin is installed as its own distribution and napari finds it through its entry point
(npe2 only accepts a manifest named after the distribution that ships it)."""

from __future__ import annotations

from importlib import metadata


def test_plugin_is_installed_and_discovered_by_npe2():
    try:
        distribution = metadata.distribution("napari-ldl")
    except metadata.PackageNotFoundError as missing:
        raise AssertionError("napari-ldl is not installed: pip install -e plugins/napari_ldl (make setup does)") from missing
    assert any(e.group == "napari.manifest" and e.value == "napari_ldl:napari.yaml" for e in distribution.entry_points)

    from npe2 import PluginManager

    manager = PluginManager.instance()
    manager.discover()
    manifest = manager.get_manifest("napari-ldl")
    assert [w.display_name for w in manifest.contributions.widgets] == ["Upscale", "Fine-tune"]
    keys = {s.key for s in manifest.contributions.sample_data}
    assert {"cell", "retina", "moon", "hubble_deep_field", "cell_stack_16bit"} <= keys
