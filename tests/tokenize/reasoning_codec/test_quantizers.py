import torch

from uniaudio.tokenize.reasoning_codec.quantizers import ResidualVQ


def test_residual_vq_picks_nearest_codewords_layer_by_layer():
    torch.manual_seed(0)
    vq = ResidualVQ(dim=12, codebook_dim=4, codebook_size=16, num_quantizers=3)
    x = torch.randn(2, 5, 12)
    quantized, codes = vq(x)
    assert codes.shape == (2, 5, 3) and codes.dtype == torch.int64
    residual = vq.project_in(x)
    for i, layer in enumerate(vq.layers):
        embed = layer._codebook.embed[0]
        brute = torch.cdist(residual.reshape(-1, 4), embed).argmin(-1).reshape(2, 5)
        assert torch.equal(codes[..., i], brute)
        residual = residual - embed[brute]
    torch.testing.assert_close(vq.decode(codes), quantized)


def test_initted_of_either_library_version_loads():
    vq = ResidualVQ(dim=8, codebook_dim=4, codebook_size=4, num_quantizers=1)
    state = vq.state_dict()
    state["layers.0._codebook.initted"] = torch.tensor([1.0])  # vector-quantize-pytorch 1.27: [1] float
    vq.load_state_dict(state, strict=True)
    assert vq.layers[0]._codebook.initted.shape == ()


def test_decode_rejects_out_of_range_ids():
    vq = ResidualVQ(dim=8, codebook_dim=4, codebook_size=4, num_quantizers=1)
    try:
        vq.decode(torch.full((1, 2, 1), 4))
    except ValueError as exc:
        assert "[0, 4)" in str(exc)
    else:
        raise AssertionError("out-of-range code id was accepted")
