"""``starnet``: the StarNet convolutional network of Fabbro et al. (2018), one branch per spectral arm."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from starlabel.components import Architecture, ComponentOptions, InputSpec

if TYPE_CHECKING:
    from torch import nn


class StarNetOptions(ComponentOptions):
    """Options of ``starnet``."""

    conv_filters: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (4, 16), min_length=1, description="output channels of each convolution of an arm's branch"
    )
    kernel_size: int = Field(
        8, ge=1, le=255, description="convolution kernel width in pixels ('valid' convolutions, no padding)"
    )
    pool: int = Field(4, ge=1, le=64, description="max-pool size after the last convolution (1: no pooling)")
    dense_layers: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (256, 128), description="fully connected layers after the flattened convolutions and auxiliary inputs"
    )
    activation: Literal["relu", "leaky_relu", "gelu", "elu"] = Field(
        "relu", description="activation after every convolution and dense layer"
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout rate after every dense layer (0: none)")
    variance_head: bool = Field(
        False, description="also predict a log-variance per label (heteroscedastic Gaussian likelihood)"
    )
    mc_dropout: bool = Field(False, description="keep dropout active at prediction time (needs dropout > 0)")

    @model_validator(mode="after")
    def _mc_needs_dropout(self) -> StarNetOptions:
        if self.mc_dropout and self.dropout == 0:
            raise ValueError("mc_dropout needs dropout > 0")
        return self


class StarNet(Architecture):
    """StarNet (Fabbro et al. 2018): two valid convolutions, one max-pool, two dense layers, linear outputs.

    Per arm: ``Conv1d(1→4, k=8)`` → ReLU → ``Conv1d(4→16, k=8)`` → ReLU → ``MaxPool1d(4)`` → flatten (the
    arm's branch of ``trunk``). The flattened arms and the auxiliary inputs, if any, are concatenated and go
    through ``Dense(256)`` → ReLU → ``Dense(128)`` → ReLU (dropout after each when ``dropout`` > 0) to a
    linear output per label, plus a log-variance output with ``variance_head``. Convolutions are unpadded as
    in the original; on an arm shorter than the kernel the kernel is clamped to the remaining length, and the
    pool to what is left, so any arm of at least one pixel builds.
    """

    name = "starnet"
    Options = StarNetOptions
    citation = (
        "Fabbro, Venn, O'Briain et al. 2018, MNRAS 475, 2978: 'An application of deep learning in the analysis "
        "of stellar spectra' (StarNet)"
    )
    data_model_url = "https://arxiv.org/abs/1709.09182"
    status = "experimental"
    options: StarNetOptions

    def build(self, spec: InputSpec) -> nn.Module:
        """Return an untrained :class:`~starlabel_nets.modules.SpectrumNetwork` for ``spec``.

        Parameters
        ----------
        spec : InputSpec
            Arm lengths, auxiliary width and labels.

        Returns
        -------
        torch.nn.Module
            Follows the module contract of :class:`starlabel.components.Architecture`.
        """
        from torch import nn

        from starlabel_nets.modules import SpectrumNetwork, check_spec, conv_stack, dense_stack

        check_spec(spec)
        o = self.options
        branches = []
        width = 0
        for pixels in spec.arm_pixels:
            branch, flat = conv_stack(
                int(pixels),
                o.conv_filters,
                o.kernel_size,
                padding="valid",
                activation=o.activation,
                pool=o.pool,
                pool_after="last",
            )
            branches.append(branch)
            width += flat
        aux_branch = nn.Identity() if spec.n_aux > 0 else None
        head, head_width = dense_stack(width + spec.n_aux, o.dense_layers, activation=o.activation, dropout=o.dropout)
        return SpectrumNetwork(
            spec,
            nn.ModuleList(branches),
            aux_branch,
            head,
            head_width,
            heteroscedastic=o.variance_head,
            mc_dropout=o.mc_dropout,
        )
