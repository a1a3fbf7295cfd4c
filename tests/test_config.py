"""Config: presets, the JSON round trip, one-line errors that name the field, flat names, hashing."""
from __future__ import annotations

import dataclasses
import json

import pytest

from genforge.config import (FAMILIES, FLAT_FIELDS, PRESETS, SECTIONS, RunConfig,
                             check_family_options, config_from_dict, resolve_augment,
                             make_config, nest_options, with_overrides)
from genforge.errors import ConfigError


def config_error(**kw) -> str:
    """The message of the ConfigError raised by make_config(**kw); it must be a single line."""
    with pytest.raises(ConfigError) as info:
        make_config(**kw)
    message = str(info.value)
    assert message and "\n" not in message
    return message


# --- presets and the round trip --------------------------------------------------------------------

# consistency models are tuned from a diffusion model's whole configuration (genforge distill):
# presets size networks, which the teacher decided
TRAINED_FAMILIES = [f for f in FAMILIES if f != "consistency"]


@pytest.mark.parametrize("family", TRAINED_FAMILIES)
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_validates_and_applies_its_values(preset, family):
    config = make_config(preset, family=family)
    assert isinstance(config, RunConfig) and config.family == family
    for section, values in PRESETS[preset][family].items():
        for name, value in values.items():
            assert getattr(getattr(config, section), name) == value, f"{section}.{name}"
    # The preset overrides are merged over the defaults, not replacing whole sections.
    assert config.diffusion == make_config(family=family).diffusion


def test_consistency_tuning_starts_from_ect_s_noise_levels():
    config = make_config("cpu-small", family="consistency")
    assert (config.diffusion.p_mean, config.diffusion.p_std) == (-1.1, 2.0)
    assert config.train.warmup_steps == 0 and config.train.lr < make_config("cpu-small").train.lr


def test_gan_starts_from_its_own_training_defaults():
    gan, diffusion = make_config(None, family="gan"), make_config(None)
    assert gan.train.warmup_steps == 0 and gan.train.grad_clip == 0.0
    assert diffusion.train.warmup_steps == 200 and diffusion.train.grad_clip == 1.0
    # a user's value still wins over the family default
    assert make_config(None, {"train": {"lr": 5e-4}}, family="gan").train.lr == 5e-4


@pytest.mark.parametrize("family, option, owner", [
    ("gan", "model_channels", "diffusion"), ("gan", "sigma_data", "diffusion"),
    ("diffusion", "generator_channels", "gan"), ("diffusion", "r1_gamma", "gan")])
def test_options_of_the_other_family_are_refused_by_name(family, option, owner):
    with pytest.raises(ConfigError) as err:
        check_family_options(family, {option: "1", "batch_size": "8", "augment": "off"})
    message = str(err.value)
    assert f"--{option.replace('_', '-')}" in message and owner in message and family in message


@pytest.mark.parametrize("family, augment", [("diffusion", "ada"), ("diffusion", "diffaugment"),
                                             ("gan", "nonleaking")])
def test_augmentation_of_the_other_family_is_refused(family, augment):
    message = config_error(family=family, overrides={"augment": {"augment": augment}})
    assert "augment.augment" in message and augment in message and family in message


@pytest.mark.parametrize("family, items, expected", [
    ("gan", 1_000, "ada"), ("gan", 60_000, "off"),
    ("diffusion", 1_000, "off"), ("diffusion", 60_000, "off")])
def test_auto_augmentation_follows_the_family_and_dataset_size(family, items, expected):
    assert resolve_augment(make_config(None, family=family), items).augment.augment == expected
    fixed = make_config(None, {"augment": {"augment": "off"}}, family=family)
    assert resolve_augment(fixed, 10).augment.augment == "off"  # an explicit choice stays


def test_configs_written_before_augmentation_existed_load_without_it():
    d = make_config().to_dict()
    del d["augment"], d["gan"]
    assert config_from_dict(d).augment.augment == "off"


def test_unknown_preset_names_the_known_ones():
    message = config_error(preset="cpu-huge")
    assert "cpu-huge" in message and "cpu-small" in message


@pytest.mark.parametrize("preset", [None, *sorted(PRESETS)])
def test_json_round_trip_gives_an_equal_config(preset):
    config = make_config(preset, {"train": {"steps": 7, "minutes": 1.5, "device": "cpu"},
                                  "data": {"channels": 3, "resolution": 32}})
    assert config_from_dict(config.to_dict()) == config
    # Through real JSON: tuples come back as lists and must be turned back into tuples.
    again = config_from_dict(json.loads(config.to_json()))
    assert again == config
    assert isinstance(again.network.channel_mult, tuple)
    assert again.to_json() == config.to_json()


def test_configs_are_frozen():
    config = make_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train.batch_size = 3  # type: ignore[misc]


def test_cli_strings_are_coerced_to_field_types():
    config = make_config(None, {"train": {"batch_size": "32", "lr": "2e-3", "steps": "none",
                                          "tensorboard": "yes"},
                                "network": {"channel_mult": "1,2,4", "attn_resolutions": ""},
                                "data": {"channels": "3", "resolution": "None"}})
    assert config.train.batch_size == 32 and config.train.lr == 2e-3
    assert config.train.steps is None and config.train.tensorboard is True
    assert config.network.channel_mult == (1, 2, 4) and config.network.attn_resolutions == ()
    assert config.data.channels == 3 and config.data.resolution is None


# --- errors: one line, naming the field -----------------------------------------------------------

def test_unknown_option_names_section_and_option():
    message = config_error(overrides={"train": {"batchsize": 8}})
    assert "train.batchsize" in message and "batch_size" in message  # suggests the known names


@pytest.mark.parametrize("make", [
    lambda: make_config(None, {"trian": {"batch_size": 8}}),
    lambda: config_from_dict({**make_config().to_dict(), "trian": {}}),
])
def test_unknown_section_is_named(make):
    with pytest.raises(ConfigError) as info:
        make()
    assert "trian" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("section, name, value", [
    ("train", "batch_size", "lots"),
    ("train", "batch_size", 2.5),
    ("train", "lr", "fast"),
    ("train", "seed", None),
    ("data", "download", "maybe"),
    ("network", "channel_mult", 3),
    ("network", "channel_mult", "1,two"),
    ("diffusion", "sigma_max", [80]),
])
def test_wrong_type_names_the_field(section, name, value):
    assert f"{section}.{name}" in config_error(overrides={section: {name: value}})


@pytest.mark.parametrize("section, name, value", [
    ("train", "precision", "fp16"),
    ("data", "channels", 2),
    ("data", "fit", "stretch"),
    ("data", "labels", "yes"),
    ("data", "kind", "audio"),
])
def test_choice_not_allowed_names_field_and_choices(section, name, value):
    message = config_error(overrides={section: {name: value}})
    assert f"{section}.{name}" in message and repr(value) in message


def test_unknown_family_is_named():
    message = config_error(family="vae")
    assert "vae" in message and "diffusion" in message and "gan" in message


@pytest.mark.parametrize("overrides, named", [
    ({"train": {"batch_size": 10, "grad_accum": 3}}, ["train.batch_size", "train.grad_accum"]),
    ({"train": {"batch_size": 0}}, ["train.batch_size"]),
    ({"train": {"grad_accum": 0}}, ["train.grad_accum"]),
    ({"network": {"patch_size": 0}}, ["network.patch_size"]),
    ({"train": {"lr": 0}}, ["train.lr"]),
    ({"train": {"ema_decay": 1.0}}, ["train.ema_decay"]),
    ({"train": {"steps": -1}}, ["train.steps"]),
    ({"train": {"minutes": 0}}, ["train.minutes"]),
    ({"train": {"log_every": 0}}, ["log_every"]),
    ({"network": {"model_channels": 12}}, ["network.model_channels"]),
    ({"network": {"channel_mult": ()}}, ["network.channel_mult"]),
    ({"network": {"channel_mult": (1, 0)}}, ["network.channel_mult"]),
    ({"network": {"num_blocks": 0}}, ["network.num_blocks"]),
    ({"network": {"dropout": 1.0}}, ["network.dropout"]),
    ({"diffusion": {"sigma_min": 100.0}}, ["diffusion.sigma_min"]),
    ({"diffusion": {"sigma_min": 0.0}}, ["diffusion.sigma_min"]),
    ({"diffusion": {"label_dropout": 1.0}}, ["diffusion.label_dropout"]),
    ({"data": {"max_bad_fraction": 1.5}}, ["data.max_bad_fraction"]),
    ({"augment": {"augment_p": 1.5}}, ["augment.augment_p"]),
    ({"augment": {"ada_target": 1.0}}, ["augment.ada_target"]),
    ({"gan": {"r1_gamma": -1.0}}, ["gan.r1_gamma"]),
    ({"gan": {"r1_interval": 0}}, ["gan.r1_interval"]),
])
def test_cross_field_rules_name_the_fields(overrides, named):
    message = config_error(overrides=overrides)
    for name in named:
        assert name in message


def test_valid_edge_values_pass():
    config = make_config(None, {"train": {"batch_size": 12, "grad_accum": 4, "steps": 0,
                                          "ema_decay": 0.0},
                                "data": {"max_bad_fraction": 1.0}})
    assert config.train.batch_size == 12 and config.train.steps == 0


def test_config_from_dict_validates_like_user_input():
    d = make_config().to_dict()
    d["train"]["grad_accum"] = 5
    with pytest.raises(ConfigError, match="train.grad_accum"):
        config_from_dict(d)


def test_with_overrides_changes_only_the_named_fields_and_validates():
    base = make_config("cpu-small")
    changed = with_overrides(base, train={"steps": 10}, network={"dropout": 0.2})
    assert changed.train.steps == 10 and changed.network.dropout == 0.2
    assert dataclasses.replace(changed.train, steps=base.train.steps) == base.train
    assert base.train.steps is None  # the original is untouched
    with pytest.raises(ConfigError, match="train.batch_size"):
        with_overrides(base, train={"batch_size": 63, "grad_accum": 2})


# --- flat option names --------------------------------------------------------------------------

def test_nest_options_maps_flat_names_to_their_sections():
    nested = nest_options({"batch_size": 8, "source": "x", "patch_size": 2, "sigma_max": 40.0})
    assert nested == {"train": {"batch_size": 8}, "data": {"source": "x"},
                      "network": {"patch_size": 2}, "diffusion": {"sigma_max": 40.0}}
    config = make_config(None, nested)
    assert (config.train.batch_size, config.data.source, config.network.patch_size,
            config.diffusion.sigma_max) == (8, "x", 2, 40.0)


def test_every_field_has_a_flat_name_and_help():
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert FLAT_FIELDS[f.name] == section
            assert f.metadata.get("help"), f"{section}.{f.name} has no help text"


def test_nest_options_rejects_unknown_names():
    with pytest.raises(ConfigError, match="batchsize"):
        nest_options({"batchsize": 8})


# --- hash and differences -----------------------------------------------------------------------

@pytest.mark.parametrize("budget", [{"steps": 100}, {"minutes": 3.0}, {"device": "cpu"},
                                    {"checkpoint_every": 7}])
def test_hash_ignores_budgets_and_device(budget):
    base = make_config("cpu-small")
    other = with_overrides(base, train=budget)
    assert other != base
    assert other.hash() == base.hash()
    assert base.differences(other) == []


@pytest.mark.parametrize("section, change", [
    ("network", {"model_channels": 48}),
    ("network", {"patch_size": 1}),
    ("network", {"channel_mult": (1, 2)}),
    ("diffusion", {"sigma_data": 0.6}),
    ("train", {"lr": 1e-4}),
    ("train", {"seed": 1}),
    ("data", {"source": "elsewhere"}),
])
def test_hash_changes_with_model_shaping_fields(section, change):
    base = make_config("cpu-small")
    other = with_overrides(base, **{section: change})
    assert other.hash() != base.hash()
    assert len(base.hash()) == 16 and base.hash() == make_config("cpu-small").hash()
    (name, new), = change.items()
    old = getattr(getattr(base, section), name)
    assert base.differences(other) == [f"{section}.{name}: {old!r} -> {new!r}"]


def test_differences_lists_every_changed_field():
    base = make_config()
    other = with_overrides(base, train={"lr": 5e-4, "steps": 3}, network={"num_blocks": 3})
    lines = base.differences(other)
    assert sorted(lines) == ["network.num_blocks: 2 -> 3", "train.lr: 0.001 -> 0.0005"]


def test_models_written_before_learned_loss_weighting_load_without_its_head():
    from genforge.config import config_from_dict, make_config
    fresh = make_config("cpu-small")
    assert fresh.diffusion.loss_weighting == "learned"  # the diffusion family's default
    written = fresh.to_dict()
    del written["diffusion"]["loss_weighting"]
    assert config_from_dict(written).diffusion.loss_weighting == "edm"
    assert config_from_dict(fresh.to_dict()).diffusion.loss_weighting == "learned"
