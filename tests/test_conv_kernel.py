"""The convolutional encoder's Triton layer (kernels/conv_kernel.py) against its torch reference, under
TRITON_INTERPRET=1 on the CPU (on a GPU with TRITON_INTERPRET=0: the compiled kernel), on small odd shapes; and a
conv model's encoder, whose latents and hyper-latents the kernel computes, against the float network."""
from __future__ import annotations

import pytest
import torch

from aezip import kernels
from aezip.conv.network import ConvCodec
from aezip.kernels.conv_kernel import CONV_CONFIGS, MAX_CHANNELS, conv_fits, conv_layer_triton
from aezip.kernels.reference import conv_layer_reference
from tests.test_kernels import DEVICE, assert_close_for


def _layer(cin: int, cout: int, k: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(cout, cin, k, k, generator=g) / (cin * k * k) ** 0.5).to(DEVICE)
    b = (0.1 * torch.randn(cout, generator=g)).to(DEVICE)
    gamma = (0.1 * torch.rand(cout, cout, generator=g)).to(DEVICE)       # GDN's effective parameters: >= 0
    beta = (0.5 + torch.rand(cout, generator=g)).to(DEVICE)
    return w, b, gamma, beta


@pytest.mark.parametrize("epilogue", ["identity", "relu", "gdn"])
@pytest.mark.parametrize("cin,cout,k,stride,hw", [(3, 7, 5, 2, (17, 13)), (1, 24, 5, 2, (5, 7)), (6, 5, 3, 1, (9, 4)),
                                                  (16, 64, 5, 2, (16, 32))])
def test_conv_layer_matches_reference(epilogue: str, cin: int, cout: int, k: int, stride: int, hw) -> None:
    w, b, gamma, beta = _layer(cin, cout, k, cin * 100 + cout)
    x = torch.rand(2, cin, *hw, generator=torch.Generator().manual_seed(cout)).to(DEVICE).requires_grad_()
    y = kernels.conv_layer(x, w, b, stride, epilogue, gamma, beta, backend="triton")
    ref = conv_layer_reference(x, w, b, stride, epilogue, gamma, beta)
    assert y.shape == ref.shape
    assert_close_for(y, ref, "encoder")
    g = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    assert_close_for(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(ref, x, g)[0], "encoder")


# The interpreter runs one large-block config (fast); these run every GPU autotune candidate.
@pytest.mark.parametrize("i", range(len(CONV_CONFIGS)))
def test_every_conv_gpu_config_matches_reference(i: int) -> None:
    w, b, gamma, beta = _layer(5, 37, 5, i)
    x = torch.rand(3, 5, 11, 9, generator=torch.Generator().manual_seed(i)).to(DEVICE)
    y = conv_layer_triton(x, w, b, 2, "gdn", gamma, beta, config=CONV_CONFIGS[i])
    assert_close_for(y, conv_layer_reference(x, w, b, 2, "gdn", gamma, beta), "encoder")


def test_wider_layers_fall_back_to_the_reference() -> None:
    w, b, _, _ = _layer(2, MAX_CHANNELS + 1, 3, 0)
    assert not conv_fits(w) and conv_fits(w[:MAX_CHANNELS])
    x = torch.rand(1, 2, 4, 4)
    torch.testing.assert_close(kernels.conv_layer(x, w, b, 1, "relu", backend="torch"),
                               conv_layer_reference(x, w, b, 1, "relu"))
    with pytest.raises(ValueError, match="epilogue"):
        kernels.conv_layer(x, w, b, 1, "gelu")
    with pytest.raises(ValueError, match="gamma"):
        kernels.conv_layer(x, w, b, 1, "gdn")


def test_a_rate_points_encoder_runs_through_the_kernel() -> None:
    torch.manual_seed(0)
    net = ConvCodec(3, 2, "hyper", 8, 6, 4).eval().single(1).to(DEVICE)
    x = torch.rand(2, 3, 32, 48).to(DEVICE)
    with torch.no_grad():
        y, z = net.encode(x, "triton")
        y_ref, z_ref = net.encode(x, "torch")
        y_float = net.analysis(x)                       # the training path: nn.Sequential with GDN modules
    assert_close_for(y, y_ref, "encoder")
    assert_close_for(y_ref, y_float, "encoder")
    assert torch.equal(z_ref, torch.round(net.h_enc(y_float)))
    assert (z != z_ref).float().mean() < 0.01           # rounding ties aside, the same hyper-latents
