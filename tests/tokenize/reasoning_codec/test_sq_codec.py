"""SQ-Codec in the released ``ScalarModel`` layout (``models/scalar24k.py``)."""

from __future__ import annotations

import pytest
import torch
import yaml

from uniaudio.tokenize.reasoning_codec.sq_codec import SQCodec, SQCodecConfig, load_sq_codec

SMALL = SQCodecConfig(latent_hidden_dim=6, init_channel=2, num_samples=2, downsample_factors=(2, 4, 4, 3, 5),
                      downsample_kernel_sizes=(4, 8, 8, 6, 10), upsample_factors=(5, 3, 4, 4, 2),
                      upsample_kernel_sizes=(10, 6, 8, 8, 4))


def _wn(prefix: str, c_out: int, c_in: int, k: int, transposed: bool = False) -> dict[str, list[int]]:
    first, second = (c_in, c_out) if transposed else (c_out, c_in)
    return {f"{prefix}.weight_g": [first, 1, 1], f"{prefix}.weight_v": [first, second, k], f"{prefix}.bias": [c_out]}


def _res(prefix: str, c: int, k: int) -> dict[str, list[int]]:
    out = _wn(f"{prefix}.conv1", c, c, k) | _wn(f"{prefix}.conv2", c, c, 1)
    return out | {f"{prefix}.activation1.weight": [1], f"{prefix}.activation2.weight": [1]}


def scalar_model_layout(a: dict) -> dict[str, list[int]]:
    """``ScalarModel(**a).state_dict()`` names and shapes, written out from the released constructor."""
    c, k, n_down, n_up = a["init_channel"], a["default_kernel_size"], len(a["downsample_factors"]), \
        len(a["upsample_factors"])
    layout = _wn("encoder.0", c, a["num_bands"], k)
    i = 1
    if a["num_samples"] > 1:
        layout |= {"encoder.1.conv.weight": [c, c, k], "encoder.1.conv.bias": [c], "encoder.1.activation.weight": [1]}
        i = 2
    for j, kern in enumerate(a["downsample_kernel_sizes"]):
        ch = c * 2**j
        for r in range(5):
            layout |= _res(f"encoder.{i + j}.convs.{r}", ch, a["res_kernel_size"])
        layout |= _wn(f"encoder.{i + j}.down_conv.layer", 2 * ch, ch, kern)
        layout[f"encoder.{i + j}.down_conv.activation.weight"] = [1]
    layout |= _wn(f"encoder.{i + n_down}", a["latent_hidden_dim"], c * 2**n_down, k)
    layout |= _wn("decoder.0", c * 2**n_up, a["latent_hidden_dim"], a["delay_kernel_size"])
    for j, kern in enumerate(a["upsample_kernel_sizes"]):
        ch = c * 2 ** (n_up - j)
        layout |= _wn(f"decoder.{1 + j}.up_conv.layer", ch // 2, ch, kern, transposed=True)
        for r in range(5):
            layout |= _res(f"decoder.{1 + j}.convs.{r}", ch // 2, a["res_kernel_size"])
    last = 1 + n_up
    if a["num_samples"] > 1:
        layout |= {f"decoder.{last}.conv.weight": [c, c, k], f"decoder.{last}.conv.bias": [c],
                   f"decoder.{last}.activation.weight": [1]}
        last += 1
    return layout | _wn(f"decoder.{last}", a["num_bands"], c, k)


@pytest.mark.parametrize("config", [SMALL, SQCodecConfig()], ids=["small", "default"])
def test_key_set_and_shapes_are_scalar_models(config):
    args = yaml.safe_load(config.to_yaml())["generator"]["config"]
    with torch.device("meta"):
        model = SQCodec(config)
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == scalar_model_layout(args)


def test_lengths_quantisation_and_weight_norm():
    torch.manual_seed(0)
    model = SQCodec(SMALL).eval()
    assert model.encode(torch.randn(1, 9600)).shape == (1, 10, 6)
    lat = torch.full((1, 4, 6), 0.3)
    assert model(lat).shape[0] == 1 and model(lat).shape[1] >= 4 * 960  # odd (k − s): a few extra samples
    torch.testing.assert_close(model(lat), model(torch.full((1, 4, 6), 3 / 9)))  # round(9·0.3)/9 = 3/9
    assert not torch.equal(model(torch.full((1, 4, 6), 2.0)), model(torch.full((1, 4, 6), 1.0)))  # no clamp
    conv = model.decoder[-1]
    x = torch.randn(1, 2, 20)
    before = conv(x) - conv.bias[:, None]
    with torch.no_grad():
        conv.weight_g.mul_(2)
    torch.testing.assert_close(conv(x) - conv.bias[:, None], 2 * before)  # weight = g·v/‖v‖


def test_loads_codec_model_strictly_from_the_constructor_yaml(tmp_path):
    model = SQCodec(SMALL)
    (tmp_path / "sq.yaml").write_text(SMALL.to_yaml())
    torch.save({"codec_model": model.state_dict()}, tmp_path / "sq.pth")
    loaded = load_sq_codec(tmp_path / "sq.yaml", tmp_path / "sq.pth")
    assert loaded.config == SMALL
    state = model.state_dict()
    del state["decoder.0.weight_g"]
    state["decoder.9.weight"] = torch.zeros(1)
    torch.save({"codec_model": state}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"missing \['decoder.0.weight_g'\]; unexpected \['decoder.9.weight'\]"):
        load_sq_codec(tmp_path / "sq.yaml", tmp_path / "bad.pth")


def test_yaml_must_hold_scalar_model_arguments(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({"generator": {"config": {"latent_dim": 136, "channels": 1024}}}))
    with pytest.raises(ValueError, match="missing .*latent_hidden_dim.*unknown \\['channels', 'latent_dim'\\]"):
        SQCodecConfig.from_yaml(path)
    with pytest.raises(ValueError, match="must be 960"):
        SQCodecConfig(downsample_factors=(4, 4, 4, 4, 5), downsample_kernel_sizes=(8, 8, 8, 8, 10))
