import pytest

from d2f.errors import ConfigError
from d2f.models import D2FConfig
from d2f.train.config import TrainConfig, apply_overrides, config_from_dict, load_config


def test_defaults_and_round_trip_through_a_dict():
    config = load_config()
    assert config == TrainConfig()
    assert config.model.architecture == D2FConfig()
    assert config_from_dict(config.to_dict()) == config


def test_yaml_and_overrides_are_typed(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("stage: 1\noptim:\n  lr: 1e-4\ndata:\n  size: [128, 192]\n")
    config = load_config(
        path, ["run.steps=7", "optim.betas=[0.8, 0.9]", "run.ema_decay=0.99", "model.init=null"]
    )
    assert config.optim.lr == 1e-4 and isinstance(config.optim.lr, float)  # YAML reads 1e-4 as a string
    assert config.data.size == (128, 192) and config.run.steps == 7
    assert config.optim.betas == (0.8, 0.9) and config.run.ema_decay == 0.99
    assert load_config(path, ["run.ema_decay=null"]).run.ema_decay is None
    assert load_config(
        path, ["model.architecture.head_features=[8, 4]"]
    ).model.architecture.head_features == (8, 4)
    assert load_config(path, ["data.resize=match"]).data.resize == "match"


def test_overrides_do_not_change_the_input():
    values = {"run": {"steps": 3}}
    assert apply_overrides(values, ["run.steps=4", "optim.lr=0.1"]) == {
        "run": {"steps": 4},
        "optim": {"lr": 0.1},
    }
    assert values == {"run": {"steps": 3}}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.learning_rate=1"], "config key optim.learning_rate: unknown key (known keys of optim:"),
        (["colour=red"], "config key colour: unknown key"),
        (["run.steps=1.5"], "config key run.steps: expected an integer, got 1.5 (float)"),
        (["run.steps=true"], "config key run.steps: expected an integer, got True (bool)"),
        (["run.tensorboard=yes please"], "config key run.tensorboard: expected true or false"),
        (["optim.betas=[0.9]"], "config key optim.betas: expected 2 values, got 1"),
        (["optim.betas=[0.9, x]"], "config key optim.betas[1]: expected a number, got 'x'"),
        (["stage=3"], "config key stage: expected one of 1, 2, 'depth', got 3"),
        (["data.dataset=imagenet"], "config key data.dataset: expected one of 'synthetic', 'ebb'"),
        (["run=5"], "config key run: expected a section (mapping), got 5 (int)"),
        (["run.steps.x=1"], "config key run.steps: expected an integer, got a section"),
        (["run.steps=0"], "config key run.steps: expected a positive integer, got 0"),
        (["run.ema_decay=1"], "config key run.ema_decay: expected a number in (0, 1) or null"),
        (["data.size=[32, 64]"], "config key data.size: expected sides of at least 64 pixels"),
        (["model.architecture.kernel_sizes=[4]"], "config key model.architecture.kernel_sizes: expected odd"),
        (["model.architecture.widths=[4]"], "config key model.architecture.widths: unknown key"),
        (["run.device=tpu"], "config key run.device: expected auto, cpu or cuda"),
        (["data.textures=/no/such/folder"], "config key data.textures: no such folder /no/such/folder"),
        (
            ["model.encoder_weights=/no/file.pth"],
            "config key model.encoder_weights: no such file /no/file.pth",
        ),
        (["data.dataset=ebb"], "config key data.root: the ebb dataset needs its folder"),
        (["data.perspective_probability=2"], "config key data.perspective_probability: expected a number in"),
        (["data.rgbd_probability=0.5"], "config key data.rgbd_root: no such RGB-D folder None"),
        (["loss.focus=-1"], "config key loss.focus: expected a non-negative weight, got -1"),
        (["loss.focus_defocus=-1"], "config key loss.focus_defocus: expected a non-negative weight"),
        (["=3"], "expected key=value"),
        (["run..steps=3"], "expected key=value"),
        (["run.steps=[1"], "override run.steps: value '[1' is not valid YAML"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as caught:
        load_config(None, overrides)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping of config keys, got list"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("run: {steps: 3\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_config(tmp_path / "broken.yaml")


def test_an_ebb_root_needs_the_pair_folders(tmp_path):
    with pytest.raises(ConfigError, match=r"config key data\.root: .*expected original/ and bokeh/"):
        load_config(None, ["data.dataset=ebb", f"data.root={tmp_path}"])
    for folder in ("Training/original", "Training/bokeh"):
        (tmp_path / folder).mkdir(parents=True)
    assert load_config(None, ["data.dataset=ebb", f"data.root={tmp_path}"]).data.root == str(tmp_path)
