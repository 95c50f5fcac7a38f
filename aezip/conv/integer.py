"""The decode side of one rate point of a convolutional codec, in integers: the fixed-point synthesis and
hyper-synthesis (aezip.coding.intconv) and the entropy tables (aezip.coding.hyperprior), made from the float model
once when a model is saved, stored as named integer tensors and checked when read back (model files are untrusted).

The architecture is fixed by (channels, n, m, z): the synthesis is up(m->n, igdn), up(n->n, igdn), up(n->C) with 5x5
kernels taking latents with LATENT_FRAC_BITS fractional bits; the hyper-synthesis is up(z->n, 5x5, relu), same(n->2m,
3x3) taking integer hyper-latents within ESCAPE_LIMIT, its first m outputs the latents' means and the rest their raw
scales."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aezip.coding.hyperprior import ESCAPE_LIMIT, MEAN_FRAC_BITS, SCALES, HyperTables, make_tables
from aezip.coding.intconv import (ACT_CLAMP, FloatLayer, IntegerConvNet, build_integer_net, expect_tensor,
                                  net_from_tensors, net_tensors)

LATENT_FRAC_BITS = MEAN_FRAC_BITS    # latents are q + mean, the means to 1/256
Z_RADIUS = 64                        # the hyper-latents' tables cover -64..64 (an escape beyond)
Y_RADIUS = 160                       # the residuals' tables cover -160..160 (an escape beyond)
MAX_TABLE_TOTAL = 1 << 52            # a table row's total: count / total stays one exact division


def synthesis_plan(channels: int, n: int, m: int) -> list[tuple[str, str, int, int, int]]:
    return [("up", "igdn", m, n, 5), ("up", "igdn", n, n, 5), ("up", "none", n, channels, 5)]


def hyper_plan(n: int, m: int, z: int) -> list[tuple[str, str, int, int, int]]:
    return [("up", "relu", z, n, 5), ("same", "none", n, 2 * m, 3)]


@dataclass
class RatePoint:
    """What decoding one rate point needs."""

    synthesis: IntegerConvNet
    hyper: IntegerConvNet
    tables: HyperTables

    def tensors(self, prefix: str) -> dict[str, np.ndarray]:
        t = {**net_tensors(self.synthesis, f"{prefix}.synthesis"), **net_tensors(self.hyper, f"{prefix}.hyper")}
        t[f"{prefix}.z_counts"] = np.ascontiguousarray(self.tables.z_counts, np.int64)
        t[f"{prefix}.y_counts"] = np.ascontiguousarray(self.tables.y_counts, np.int64)
        t[f"{prefix}.thresholds"] = np.ascontiguousarray(self.tables.thresholds, np.int64)
        return t

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], prefix: str, channels: int, n: int, m: int,
                     z: int) -> "RatePoint":
        """A rate point from untrusted tensors, every shape and bound checked (ValueError naming the tensor)."""
        synthesis = net_from_tensors(tensors, f"{prefix}.synthesis", synthesis_plan(channels, n, m),
                                     LATENT_FRAC_BITS, float(ACT_CLAMP), pixels=True)
        hyper = net_from_tensors(tensors, f"{prefix}.hyper", hyper_plan(n, m, z), 0, float(ESCAPE_LIMIT),
                                 pixels=False)
        if hyper.out_frac < MEAN_FRAC_BITS:
            raise ValueError(f"{prefix}.hyper: its accumulator has fewer than {MEAN_FRAC_BITS} fractional bits")
        tables = {}
        for name, shape in (("z_counts", (z, 2 * Z_RADIUS + 2)), ("y_counts", (SCALES, 2 * Y_RADIUS + 2)),
                            ("thresholds", (SCALES - 1,))):
            tables[name] = expect_tensor(tensors, f"{prefix}.{name}", "int64", shape)
        for name in ("z_counts", "y_counts"):
            t = tables[name]
            if (t < 1).any() or (t.sum(1, dtype=np.float64) >= MAX_TABLE_TOTAL).any():
                raise ValueError(f"tensor {prefix}.{name}: a count below 1 or a row total beyond 2^52")
        if (np.diff(tables["thresholds"]) < 0).any():
            raise ValueError(f"tensor {prefix}.thresholds is not sorted")
        return cls(synthesis, hyper, HyperTables(tables["z_counts"], -Z_RADIUS, tables["y_counts"], Y_RADIUS,
                                                 tables["thresholds"]))


def _group(t, g: int, rows: int) -> np.ndarray:
    """Rate point g's slice (rows g*rows .. (g+1)*rows along the first axis) of a grouped parameter, float64."""
    return t.detach().double().cpu()[g * rows:(g + 1) * rows].numpy()


def integer_synthesis(model, g: int) -> IntegerConvNet:
    """Rate point g's synthesis of a trained float ConvCodec (aezip.conv.network) in fixed point."""
    layers, modules = [], list(model.dec)
    for i, conv in enumerate(modules[0::2]):
        w, b = _group(conv.weight, g, conv.in_channels // model.g), _group(conv.bias, g, conv.out_channels // model.g)
        if 2 * i + 1 < len(modules):
            gamma, beta = modules[2 * i + 1].effective()
            c = len(beta) // model.g
            layers.append(FloatLayer("up", w, b, "igdn", _group(gamma, g, c), _group(beta, g, c)))
        else:
            layers.append(FloatLayer("up", w, b))
    return build_integer_net(layers, in_frac=LATENT_FRAC_BITS)


def rate_point(model, g: int) -> RatePoint:
    """Rate point g of a trained float ConvCodec with prior `hyper` in integers."""
    import torch

    up, _, same = model.h_dec
    hyper = build_integer_net([
        FloatLayer("up", _group(up.weight, g, model.z), _group(up.bias, g, up.out_channels // model.g), "relu"),
        FloatLayer("same", _group(same.weight, g, 2 * model.m).transpose(1, 0, 2, 3),
                   _group(same.bias, g, 2 * model.m))],
        in_limit=float(ESCAPE_LIMIT), pixels=False)
    with torch.no_grad():
        z_pmf = model.z_prior.table(-Z_RADIUS, Z_RADIUS)
    tables = make_tables(_group(z_pmf, g, model.z), -Z_RADIUS, hyper.out_frac, Y_RADIUS)
    return RatePoint(integer_synthesis(model, g), hyper, tables)
