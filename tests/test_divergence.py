"""Divergence is never silent: rollbacks and an unstable end are in the summary, the manifest and
the model card, loading such a model warns, and after a divergence stop a rerun with a lower
learning rate in the same folder recovers the run (recorded) instead of being refused."""
from __future__ import annotations

import json

import pytest

import genforge
from genforge.cli import main
from genforge.families import FAMILIES
from genforge.training.health import DIVERGED

# fp32: --precision auto would measure a few steps first, and these tests count loss calls
TINY = dict(preset=None, model_channels=8, channel_mult=(1, 2), num_blocks=1, attn_resolutions=(),
            batch_size=8, resolution=12, preview_count=4, sample_every=1000, log_every=1,
            checkpoint_every=2, device="cpu", precision="fp32")


class Sometimes:
    """The diffusion family whose loss is NaN on the calls `broken` names (or all, when True)."""

    def __init__(self, broken):
        self.family, self.broken, self.calls = FAMILIES["diffusion"], broken, 0

    def __getattr__(self, attr):
        return getattr(self.family, attr)

    def phases(self, config, spec):
        phases = self.family.phases(config, spec)
        real = phases[0].loss

        def loss(*args):
            self.calls += 1
            nan = self.broken is True or self.calls in self.broken
            return real(*args) * float("nan") if nan else real(*args)
        phases[0].loss = loss
        return phases


def test_an_unstable_run_says_so_everywhere(tmp_path, monkeypatch):
    monkeypatch.setitem(FAMILIES, "diffusion", Sometimes({4, 7}))
    with pytest.warns(UserWarning, match="training was unstable"):
        summary = genforge.train("fashion-mnist-sample", tmp_path / "r", steps=6, **TINY)
    assert summary["status"] == "finished" and summary["health"]["rollbacks"] == 2
    assert summary["health"]["status"] == "unstable"
    assert "health: unstable" in (tmp_path / "r" / "summary.md").read_text()
    manifest = json.loads((tmp_path / "r" / "model" / "manifest.json").read_text())
    assert manifest["training"]["health"]["rollbacks"] == 2
    assert "**unstable**" in (tmp_path / "r" / "model" / "README.md").read_text()
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="training was unstable"):
        genforge.load(tmp_path / "r" / "model", device="cpu")


def test_a_healthy_run_says_ok(tmp_path):
    summary = genforge.train("fashion-mnist-sample", tmp_path / "r", steps=3, **TINY)
    assert summary["health"]["status"] == "ok" and summary["health"]["rollbacks"] == 0
    assert "- health: ok" in (tmp_path / "r" / "model" / "README.md").read_text()


def test_after_a_divergence_stop_a_lower_lr_recovers_the_same_run(tmp_path, monkeypatch, capsys):
    broken = Sometimes(True)
    monkeypatch.setitem(FAMILIES, "diffusion", broken)
    args = ["train", "fashion-mnist-sample", "--run", str(tmp_path / "r"), "--steps", "6",
            "--model-channels", "8", "--channel-mult", "1,2", "--num-blocks", "1",
            "--attn-resolutions", "", "--batch-size", "8", "--resolution", "12",
            "--preview-count", "4", "--sample-every", "1000", "--log-every", "1",
            "--checkpoint-every", "2", "--device", "cpu", "--precision", "fp32",
            "--progress", "none"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "after 3 rollbacks" in err and "rerun in the same folder" in err
    assert (tmp_path / "r" / DIVERGED).exists()
    broken.broken = ()  # as if the lower learning rate cured it
    assert main([*args, "--seed", "3"]) == 2  # anything but the recovery options: another run
    assert "may change only --lr, --warmup-steps" in capsys.readouterr().err
    assert main([*args, "--lr", "0.0001"]) == 0
    assert "recovering" in capsys.readouterr().err and not (tmp_path / "r" / DIVERGED).exists()
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["steps"] == 6
    (recovered,) = summary["health"]["recoveries"]
    assert recovered["changes"] == ["train.lr: 0.002 -> 0.0001"]
    assert recovered["rollbacks_before"] == 3
    card = (tmp_path / "r" / "model" / "README.md").read_text()
    assert "recovered after the divergence stop" in card
