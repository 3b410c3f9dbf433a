"""``bcnn``: an astroNN-style Bayesian CNN (Leung & Bovy 2019) with MC dropout and a log-variance head."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from starlabel.components import Architecture, ComponentOptions, InputSpec

if TYPE_CHECKING:
    from torch import nn


class BayesianCNNOptions(ComponentOptions):
    """Options of ``bcnn``."""

    conv_filters: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (2, 4), min_length=1, description="output channels of each convolution of an arm's branch"
    )
    kernel_size: int = Field(3, ge=1, le=255, description="convolution kernel width in pixels ('same' padding)")
    pool: int = Field(2, ge=1, le=64, description="max-pool size after the last convolution (1: no pooling)")
    dense_layers: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (196, 96), description="fully connected layers after the flattened convolutions and auxiliary inputs"
    )
    activation: Literal["relu", "leaky_relu", "gelu", "elu"] = Field(
        "relu", description="activation after every convolution and dense layer"
    )
    dropout: float = Field(
        0.3, gt=0.0, lt=1.0, description="dropout rate after every convolution and dense layer, kept on for MC dropout"
    )


class BayesianCNN(Architecture):
    """Bayesian CNN in the style of astroNN: MC dropout after every layer, a mean and a log-variance output.

    Per arm: ``Conv1d(1→2, k=3, same)`` → ReLU → Dropout → ``Conv1d(2→4, k=3, same)`` → ReLU →
    ``MaxPool1d(2)`` → Dropout → flatten (the arm's branch of ``trunk``). The flattened arms and the
    auxiliary inputs, if any, are concatenated and go through ``Dense(196)`` → ReLU → Dropout → ``Dense(96)``
    → ReLU → Dropout, then two linear outputs per label: the mean and the log-variance (clamped to
    [-15, 15]). The network is always heteroscedastic and ``mc_dropout`` is always True: dropout is meant to
    stay on at prediction time, and the spread of repeated passes gives the model uncertainty while
    ``exp(log_var)`` gives the predicted (aleatoric) variance. The pool is clamped to the arm's length, so
    any arm of at least one pixel builds.
    """

    name = "bcnn"
    Options = BayesianCNNOptions
    citation = (
        "Leung & Bovy 2019, MNRAS 483, 3255: 'Deep learning of multi-element abundances from high-resolution "
        "spectroscopic data' (astroNN Bayesian CNN with dropout variational inference)"
    )
    data_model_url = "https://astronn.readthedocs.io/"
    status = "experimental"
    options: BayesianCNNOptions

    def build(self, spec: InputSpec) -> nn.Module:
        """Return an untrained :class:`~starlabel_nets.modules.SpectrumNetwork` for ``spec``.

        Parameters
        ----------
        spec : InputSpec
            Arm lengths, auxiliary width and labels.

        Returns
        -------
        torch.nn.Module
            Heteroscedastic, with ``mc_dropout = True``; follows the module contract of
            :class:`starlabel.components.Architecture`.
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
                padding="same",
                activation=o.activation,
                pool=o.pool,
                pool_after="last",
                dropout=o.dropout,
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
            heteroscedastic=True,
            mc_dropout=True,
        )
