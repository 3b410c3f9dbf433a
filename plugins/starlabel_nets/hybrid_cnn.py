"""``hybrid_cnn``: per-arm 1-D CNN branches plus a dense branch over auxiliary inputs (Guiglion et al. 2024)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, field_validator, model_validator

from starlabel.components import Architecture, ComponentOptions, InputSpec

if TYPE_CHECKING:
    from torch import nn


class HybridCNNOptions(ComponentOptions):
    """Options of ``hybrid_cnn``."""

    conv_filters: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (16, 32, 32), min_length=1, description="output channels of each convolution of an arm's branch"
    )
    kernel_size: int = Field(7, ge=1, le=255, description="convolution kernel width in pixels (odd; 'same' padding)")
    pool: int = Field(2, ge=1, le=64, description="max-pool size after each convolution (1: no pooling)")
    activation: Literal["relu", "leaky_relu", "gelu", "elu"] = Field(
        "leaky_relu", description="activation after every convolution and dense layer"
    )
    batch_norm: bool = Field(False, description="batch normalisation between each convolution and its activation")
    spectrum_features: int = Field(
        128, ge=1, description="width of the dense layer each arm's flattened convolution output is mapped to"
    )
    aux_layers: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (64, 64), description="dense layers of the auxiliary-input branch (empty: auxiliary inputs concatenated as is)"
    )
    head_layers: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (256, 128), description="dense layers after the concatenation (empty: linear outputs on the concatenation)"
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout rate after every dense layer (0: none)")
    variance_head: bool = Field(
        False, description="also predict a log-variance per label (heteroscedastic Gaussian likelihood)"
    )
    mc_dropout: bool = Field(False, description="keep dropout active at prediction time (Monte-Carlo dropout)")

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, kernel_size: int) -> int:
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (centred 'same' convolution), got {kernel_size}")
        return kernel_size

    @model_validator(mode="after")
    def _mc_needs_dropout(self) -> HybridCNNOptions:
        if self.mc_dropout and self.dropout == 0:
            raise ValueError("mc_dropout needs dropout > 0")
        return self


class HybridCNN(Architecture):
    """Hybrid CNN: a convolution branch per spectral arm and a dense branch over auxiliary inputs, then a dense head.

    Each arm's flux goes through ``len(conv_filters)`` stages of ``Conv1d`` ('same' padding, odd
    ``kernel_size``) → [``BatchNorm1d``] → activation → ``MaxPool1d(pool)``, is flattened and mapped by a dense
    layer to ``spectrum_features`` (activation, dropout); these layers form the arm's branch of ``trunk``.
    The auxiliary inputs (photometry, parallax, XP coefficients...) go through dense ``aux_layers``. The
    arm features and auxiliary features are concatenated and passed through dense ``head_layers`` (activation
    and dropout after each) to a linear output per label, and with ``variance_head`` a second linear output
    giving the log-variance. Pools are clamped to the remaining length (never below one pixel), so short arms
    build. Without auxiliary inputs there is no auxiliary branch; without a spectrum the network is the
    auxiliary branch and the head.
    """

    name = "hybrid_cnn"
    Options = HybridCNNOptions
    citation = (
        "Guiglion et al. 2024, A&A 682, A9: 'Beyond Gaia DR3: tracing the [α/M]–[M/H] bimodality from the inner "
        "to the outer Milky Way disc with Gaia RVS and convolutional neural networks' (hybrid CNN over RVS "
        "spectra, XP coefficients, photometry and parallax)"
    )
    data_model_url = "https://doi.org/10.1051/0004-6361/202347122"
    status = "experimental"
    options: HybridCNNOptions

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

        from starlabel_nets.modules import SpectrumNetwork, check_spec, conv_stack, dense_stack, make_activation

        check_spec(spec)
        o = self.options
        branches = []
        for pixels in spec.arm_pixels:
            convs, flat = conv_stack(
                int(pixels),
                o.conv_filters,
                o.kernel_size,
                padding="same",
                activation=o.activation,
                pool=o.pool,
                pool_after="each",
                batch_norm=o.batch_norm,
            )
            projection: list[nn.Module] = [nn.Linear(flat, o.spectrum_features), make_activation(o.activation)]
            if o.dropout > 0:
                projection.append(nn.Dropout(o.dropout))
            branches.append(nn.Sequential(*convs, *projection))
        width = len(branches) * o.spectrum_features
        aux_branch = None
        if spec.n_aux > 0:
            aux_branch, aux_width = dense_stack(spec.n_aux, o.aux_layers, activation=o.activation, dropout=o.dropout)
            width += aux_width
        head, head_width = dense_stack(width, o.head_layers, activation=o.activation, dropout=o.dropout)
        return SpectrumNetwork(
            spec,
            nn.ModuleList(branches),
            aux_branch,
            head,
            head_width,
            heteroscedastic=o.variance_head,
            mc_dropout=o.mc_dropout,
        )
