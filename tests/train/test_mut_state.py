"""What a training run leaves on disk, as a user resuming or picking weights meets it: the file
names BasicSR users know, which states are kept (by iteration number, not by name), which one a
resume picks, and what a damaged state says. References: torch.load of the files and the
networks' own state_dicts, the file system, time.strftime.

Written against the survivors of `make mutation MODULES=state` (benchmarks/results/mutation.md)."""

from __future__ import annotations

import re
import time

import pytest
import torch
from torch import nn

from ldl_video.errors import LdlError
from ldl_video.train.state import archive_run, latest_state, load_state, save_networks, save_state


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 3, 1))
    # a transposed view: the saved tensor must be the values, laid out contiguously
    net[1].weight.data = net[1].weight.data.transpose(0, 1).contiguous().transpose(0, 1)
    return net


def _assert_same(saved: dict, net: nn.Module) -> None:
    expected = net.state_dict()
    assert list(saved) == list(expected)
    for key, tensor in expected.items():
        assert saved[key].device.type == "cpu"
        torch.testing.assert_close(saved[key], tensor, rtol=0, atol=0)


def test_networks_are_saved_under_basicsr_names_with_the_ema_apart(tmp_path):
    net_g, net_g_ema, net_d = _net(1), _net(2), _net(3)
    latest = save_networks(tmp_path, 500, net_g, net_g_ema, net_d)
    models = tmp_path / "models"
    assert latest == models / "net_g_latest.pth"
    assert sorted(p.name for p in models.iterdir()) == ["net_d_500.pth", "net_d_latest.pth", "net_g_500.pth",
                                                        "net_g_latest.pth"]
    for name in ("net_g_500.pth", "net_g_latest.pth"):
        saved = torch.load(models / name, map_location="cpu", weights_only=True)
        assert set(saved) == {"params", "params_ema"}
        _assert_same(saved["params"], net_g)
        _assert_same(saved["params_ema"], net_g_ema)
    for name in ("net_d_500.pth", "net_d_latest.pth"):
        saved = torch.load(models / name, map_location="cpu", weights_only=True)
        assert set(saved) == {"params"}
        _assert_same(saved["params"], net_d)


def test_without_a_discriminator_only_the_generator_is_saved(tmp_path):
    save_networks(tmp_path, 7, _net(1), _net(2), None)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["net_g_7.pth", "net_g_latest.pth"]


def test_states_are_kept_by_iteration_number_and_resume_takes_the_highest(tmp_path):
    for iteration in (5, 10, 100, 40):
        path = save_state(tmp_path, iteration, {"iteration": iteration}, keep=2)
        assert path == tmp_path / "training_states" / f"{iteration}.state"
    # 100 and 40 are the two highest numbers (as text, "5" and "40" would be)
    assert sorted(p.name for p in (tmp_path / "training_states").iterdir()) == ["100.state", "40.state"]
    (tmp_path / "training_states" / "notes.state").write_bytes(b"not ours")
    assert latest_state(tmp_path) == tmp_path / "training_states" / "100.state"
    assert load_state(latest_state(tmp_path)) == {"iteration": 100}
    assert not list(tmp_path.rglob("*.partial"))  # written under a temporary name, then renamed


def test_a_foreign_file_is_never_taken_or_deleted(tmp_path):
    states = tmp_path / "training_states"
    states.mkdir()
    (states / "backup.state").write_bytes(b"x")
    assert latest_state(tmp_path) is None
    save_state(tmp_path, 3, {"iteration": 3}, keep=1)
    save_state(tmp_path, 4, {"iteration": 4}, keep=1)
    assert sorted(p.name for p in states.iterdir()) == ["4.state", "backup.state"]


def test_no_state_yet_means_a_fresh_start(tmp_path):
    assert latest_state(tmp_path) is None


def test_a_run_folder_that_does_not_exist_yet_is_made(tmp_path):
    run = tmp_path / "experiments" / "x4"
    save_state(run, 1, {"iteration": 1}, keep=1)
    save_networks(run, 1, _net(1), _net(2), None)
    assert latest_state(run) == run / "training_states" / "1.state"
    assert (run / "models" / "net_g_1.pth").is_file()


class _NotATensor:
    pass


def test_a_state_holding_python_objects_is_refused_not_run(tmp_path):
    """A state is read with torch's weights-only loader: a file that would run code on loading
    (any pickled object) is refused in one line."""
    path = tmp_path / "training_states" / "9.state"
    path.parent.mkdir()
    torch.save({"iteration": 9, "object": _NotATensor()}, path)
    with pytest.raises(LdlError, match="cannot read the training state"):
        load_state(path)


def test_a_truncated_state_says_which_file_and_what_to_do(tmp_path):
    path = save_state(tmp_path, 20, {"weights": torch.zeros(1000)}, keep=3)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(LdlError) as caught:
        load_state(path)
    message = str(caught.value)
    with pytest.raises(Exception) as by_torch:  # noqa: B017 -- the reason torch itself gives, named in the message
        torch.load(path, map_location="cpu", weights_only=True)
    assert f"{path} ({type(by_torch.value).__name__})" in message
    assert message.endswith("delete it to resume from the one before") and "\n" not in message


def test_a_state_saved_at_iteration_0_is_resumed_and_pruned_like_any(tmp_path):
    save_state(tmp_path, 0, {"iteration": 0}, keep=1)
    assert latest_state(tmp_path) == tmp_path / "training_states" / "0.state"
    save_state(tmp_path, 50, {"iteration": 50}, keep=1)
    assert sorted(p.name for p in (tmp_path / "training_states").iterdir()) == ["50.state"]


def test_a_used_run_name_moves_the_old_run_aside_with_its_time(tmp_path):
    run = tmp_path / "x4"
    assert archive_run(run) is None  # nothing there
    run.mkdir()
    assert archive_run(run) is None and run.is_dir()  # an empty folder is simply reused
    (run / "log.jsonl").write_text("{}\n")
    before = time.strftime("%Y%m%d_%H%M%S")
    moved = archive_run(run)
    after = time.strftime("%Y%m%d_%H%M%S")
    assert moved is not None and moved.parent == tmp_path and not run.exists()
    stamp = re.fullmatch(r"x4_archived_(\d{8}_\d{6})", moved.name)
    assert stamp and before <= stamp.group(1) <= after
    assert (moved / "log.jsonl").read_text() == "{}\n"
