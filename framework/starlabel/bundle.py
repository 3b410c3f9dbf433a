"""Model bundles: a folder with the weights in safetensors and a JSON card; nothing is ever unpickled.

Layout::

    BUNDLE/card.json            what the model is (see :class:`Card`), written last: no card, no bundle
    BUNDLE/weights.safetensors  member{k}.<parameter> for each ensemble member, inputs.* (the input
                                transform), ood.* (the input-coverage model)

The card holds the architecture and its options, the descriptor's name and hash, the input fingerprint
(grid, mask, normalisation, arms, resolving power, auxiliary providers and their columns), the input and
label normalisation, label names and units, the training-label coverage, metrics, versions, and the
SHA-256 of the weights file. :func:`load_bundle` checks every one of these before building a module, and
:func:`check_compatible` refuses a store whose inputs differ from the card's.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from starlabel.errors import StarlabelError
from starlabel.inputs import InputTransform

if TYPE_CHECKING:
    import torch

    from starlabel.coverage import InputCoverage, LabelCoverage
    from starlabel.plugins import Plugins
    from starlabel.store import Store

BUNDLE_FORMAT = "starlabel-bundle"
BUNDLE_VERSION = 1
CARD_FILE = "card.json"
WEIGHTS_FILE = "weights.safetensors"


class BundleError(StarlabelError):
    """A bundle is missing, incomplete, tampered with, or does not fit the data it is applied to."""

    exit_code = 2


class _Card(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArchitectureCard(_Card):
    name: str
    options: dict[str, Any]


class InputSpecCard(_Card):
    arm_pixels: list[int]
    n_aux: int
    labels: list[str]


class NormalisationCard(_Card):
    label_names: list[str]
    label_units: dict[str, str]
    label_mean: list[float]
    label_std: list[float]
    aux_columns: list[str]
    aux_mean: list[float]
    aux_std: list[float]


class WeightsCard(_Card):
    file: Literal["weights.safetensors"]
    sha256: str


class Card(_Card):
    """The model card (``card.json``); unknown or missing keys are refused."""

    format: Literal["starlabel-bundle"]
    format_version: int
    created: str
    versions: dict[str, str]
    architecture: ArchitectureCard
    input_spec: InputSpecCard
    members: int
    heteroscedastic: bool
    mc_dropout: bool
    descriptor: dict[str, str]
    inputs: dict[str, Any]
    transform: dict[str, Any]
    normalisation: NormalisationCard
    split: dict[str, Any]
    training: dict[str, Any]
    coverage: dict[str, Any]
    ood: dict[str, Any] | None
    metrics: dict[str, Any]
    weights: WeightsCard


def input_fingerprint(store: Store) -> dict[str, Any]:
    """What defines a network's inputs, from a store's descriptor and layout.

    The grid, the masked regions, the normalisation, the arms and resolving power, and each auxiliary
    entry with its options and columns. The reader and the data location are not part of it: two readers
    that deliver the same product on the same grid feed a network the same inputs.
    """
    descriptor = store.meta["descriptor"]
    return {
        "grid": store.meta["grid"],
        "mask": descriptor.get("mask", []),
        "normalise": descriptor.get("normalise"),
        "arms": descriptor["instrument"].get("arms", []),
        "resolution": descriptor["instrument"].get("resolution"),
        "auxiliary": [
            {"provider": e["provider"], "name": e["name"], "options": e.get("options", {})}
            for e in descriptor.get("auxiliary", [])
        ],
        "aux_columns": {k: list(v) for k, v in store.layout.aux.items()},
    }


def _describe(section: str, value: Any) -> str:
    if section == "grid" and isinstance(value, dict):
        n = value.get("n_pixels", len(value.get("values", [])))
        return f"{n} px {value.get('start', '?')}–{value.get('stop', '?')} {value.get('unit')} ({value.get('spacing')})"
    text = json.dumps(value, sort_keys=True)
    return text if len(text) < 160 else text[:157] + "..."


def check_compatible(card: Card, store: Store, bundle_path: Path) -> None:
    """Refuse a store whose inputs differ from those the bundle was trained on.

    Raises
    ------
    BundleError
        Listing each differing section with the bundle's and the store's value.
    """
    mine = input_fingerprint(store)
    differ = [k for k in sorted(set(card.inputs) | set(mine)) if card.inputs.get(k) != mine.get(k)]
    if differ:
        lines = [f"  {k}: bundle {_describe(k, card.inputs.get(k))}; store {_describe(k, mine.get(k))}" for k in differ]
        raise BundleError(
            f"{bundle_path}: cannot be applied to store {store.path}: its inputs differ from those the model was "
            f"trained on ({', '.join(differ)}):\n" + "\n".join(lines) + "\nIngest the spectra with the descriptor the "
            f"bundle was trained with ({card.descriptor.get('name')}, hash {card.descriptor.get('hash', '')[:12]}), "
            "or train a model for this store."
        )


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bundle(path: str | Path, card: Mapping[str, Any], tensors: Mapping[str, np.ndarray]) -> Path:
    """Write ``tensors`` to the weights file, then the card (with the weights' SHA-256) atomically, last.

    ``card`` is every :class:`Card` field but ``weights``; it is validated before anything is written.
    """
    from safetensors.numpy import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    weights = path / WEIGHTS_FILE
    tmp = path / (WEIGHTS_FILE + ".tmp")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, weights)
    full = dict(card) | {"weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(weights)}}
    Card.model_validate(full)
    tmp_card = path / (CARD_FILE + ".tmp")
    tmp_card.write_text(json.dumps(full, indent=1, sort_keys=False, allow_nan=False) + "\n")
    os.replace(tmp_card, path / CARD_FILE)
    return path


def read_card(path: str | Path) -> Card:
    """Read and validate a bundle's card (without loading weights).

    Raises
    ------
    BundleError
        No bundle there, an unfinished one, a card that is not valid JSON or not a card of this format.
    """
    path = Path(path)
    card_path = path / CARD_FILE
    if not card_path.is_file():
        hint = (
            "its training did not finish; re-run `starlabel train ... --resume`"
            if (path / "_work").is_dir()
            else "make one with `starlabel train`"
        )
        raise BundleError(f"{path}: not a model bundle (no {CARD_FILE}); {hint}")
    try:
        raw = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(f"{card_path}: not valid JSON ({error}); the card is damaged") from None
    if not isinstance(raw, dict) or raw.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{card_path}: not a {BUNDLE_FORMAT} card (format {raw.get('format')!r})")
    if int(raw.get("format_version", 0)) > BUNDLE_VERSION:
        raise BundleError(
            f"{card_path}: bundle format version {raw['format_version']} is newer than this starlabel reads "
            f"({BUNDLE_VERSION}); upgrade starlabel"
        )
    try:
        return Card.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5])
        raise BundleError(f"{card_path}: not a valid model card: {problems}") from None


@dataclass
class Bundle:
    """A loaded bundle: card, one module per ensemble member (in eval mode), input transform, coverage."""

    path: Path
    card: Card
    members: list[torch.nn.Module]
    transform: InputTransform
    coverage: LabelCoverage
    ood: InputCoverage | None

    @property
    def labels(self) -> list[str]:
        """Label names, in output order."""
        return list(self.card.normalisation.label_names)


def load_bundle(path: str | Path, plugins: Plugins, device: str = "cpu") -> Bundle:
    """Load a bundle: validate the card, check the weights' SHA-256, build and fill each member.

    Only ``json`` and ``safetensors`` are used to read the files: nothing in a bundle can run code.

    Raises
    ------
    BundleError
        For any inconsistency between the card, the weights and the installed architectures.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from starlabel.coverage import InputCoverage, LabelCoverage

    path = Path(path)
    card = read_card(path)
    weights = path / card.weights.file
    if not weights.is_file():
        raise BundleError(f"{path}: weights file {card.weights.file} is missing")
    digest = sha256_file(weights)
    if digest != card.weights.sha256:
        raise BundleError(
            f"{weights}: SHA-256 {digest[:16]}… does not match the card's {card.weights.sha256[:16]}…; "
            "the weights were changed after the bundle was written"
        )
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise BundleError(f"{weights}: not a readable safetensors file ({error})") from None
    arch_cls = plugins.architectures.get(card.architecture.name)
    arch = arch_cls(card.architecture.options)
    transform = InputTransform.from_parts(
        {k.removeprefix("inputs."): v.numpy() for k, v in tensors.items() if k.startswith("inputs.")}, card.transform
    )
    spec = transform.spec(card.input_spec.labels)
    if list(spec.arm_pixels) != card.input_spec.arm_pixels or spec.n_aux != card.input_spec.n_aux:
        raise BundleError(f"{path}: the card's input_spec does not match its input transform")
    members = []
    for k in range(card.members):
        prefix = f"member{k}."
        state = {name.removeprefix(prefix): t for name, t in tensors.items() if name.startswith(prefix)}
        module = arch.build(spec)
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise BundleError(
                f"{path}: member {k} does not fit architecture {card.architecture.name} with the card's options: "
                f"{str(error).splitlines()[0]}"
            ) from None
        members.append(module.to(device).eval())
    ood = None
    if card.ood is not None:
        ood_arrays = {k.removeprefix("ood."): v.numpy() for k, v in tensors.items() if k.startswith("ood.")}
        ood = InputCoverage.from_arrays(ood_arrays, card.ood)
    return Bundle(path, card, members, transform, LabelCoverage.from_dict(card.coverage), ood)
