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

Safety. A bundle is data, never code: the card is read with ``json`` and the weights with
``safetensors``, and nothing else in the folder is opened (a ``model.pt``, ``*.pkl`` or
``pytorch_model.bin`` put beside them is ignored). Nothing is unpickled, so a pickle payload renamed to
``weights.safetensors`` is refused (its SHA-256 differs from the card's; with the card's hash edited to
match, safetensors cannot parse it) without running. What each file protects:

* the card's ``weights.sha256`` protects the weights: any change to ``weights.safetensors`` is refused;
* the card is validated for structure (unknown or missing keys, wrong types, a format version from the
  future, ``weights.file`` other than ``weights.safetensors``) and for consistency with the weights
  (architecture and options that build modules the member tensors fit exactly, as many members as the
  weights hold, labels, normalisation and auxiliary columns of matching lengths, an input transform and
  input-coverage model that fit the weights, finite scales).

The card carries no hash of itself: a signature would need a key the reader trusts, and a hash stored
beside the card can be recomputed by whoever edits it. A card edited so that it stays consistent with
the weights (a renamed label, another ``flux_scale``) therefore describes a different model, and is
loaded as one; take bundles only from people you trust for their *numbers*, as you would a catalogue.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from starlabel.errors import StarlabelError, UnknownComponentError
from starlabel.inputs import InputTransform
from starlabel.storage import storage_errors

if TYPE_CHECKING:
    import torch

    from starlabel.coverage import InputCoverage, LabelCoverage
    from starlabel.plugins import Plugins
    from starlabel.store import Store

BUNDLE_FORMAT = "starlabel-bundle"
BUNDLE_VERSION = 1
CARD_FILE = "card.json"
WEIGHTS_FILE = "weights.safetensors"
RESUME = "re-run the same `starlabel train ... --resume` command to write it (the trained members are kept)"


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
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Card(_Card):
    """The model card (``card.json``); unknown or missing keys are refused, and :func:`read_card` coerces no type."""

    format: Literal["starlabel-bundle"]
    format_version: int = Field(ge=1, le=BUNDLE_VERSION)
    created: str
    versions: dict[str, str]
    architecture: ArchitectureCard
    input_spec: InputSpecCard
    members: int = Field(ge=1)
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

    @field_validator("descriptor")
    @classmethod
    def _descriptor_keys(cls, value: dict[str, str]) -> dict[str, str]:
        if set(value) != {"name", "hash"}:
            raise ValueError(f"must hold exactly 'name' and 'hash', got {sorted(value)}")
        return value

    @field_validator("split")
    @classmethod
    def _split_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        if set(value) != {"seed", "train", "valid", "test"}:
            raise ValueError(f"must hold exactly seed, train, valid and test, got {sorted(value)}")
        if not isinstance(value["seed"], int) or isinstance(value["seed"], bool):
            raise ValueError(f"seed must be an integer, got {value['seed']!r}")
        for key in ("train", "valid", "test"):
            if isinstance(value[key], bool) or not isinstance(value[key], int | float) or not 0 <= value[key] <= 1:
                raise ValueError(f"{key} must be a fraction between 0 and 1, got {value[key]!r}")
        return value

    @field_validator("training")
    @classmethod
    def _training_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        options = value.get("options")
        if not isinstance(options, dict):
            raise ValueError("must hold the training 'options' (an object)")
        samples = options.get("mc_samples", 16)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"options.mc_samples must be a positive integer, got {samples!r}")
        return value


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
    weights = path / WEIGHTS_FILE
    tmp = path / (WEIGHTS_FILE + ".tmp")
    tmp_card = path / (CARD_FILE + ".tmp")
    placeholder = dict(card) | {"weights": {"file": WEIGHTS_FILE, "sha256": "0" * 64}}
    Card.model_validate(json.loads(json.dumps(placeholder, allow_nan=False)), strict=True)  # as read_card will
    with storage_errors(path, "write the model bundle", BundleError, then=RESUME):
        try:
            path.mkdir(parents=True, exist_ok=True)
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp))
            os.replace(tmp, weights)
            full = dict(card) | {"weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(weights)}}
            tmp_card.write_text(json.dumps(full, indent=1, sort_keys=False, allow_nan=False) + "\n")
            os.replace(tmp_card, path / CARD_FILE)
        except BaseException:
            for leftover in (tmp, tmp_card):  # free the space; without card.json the folder is no bundle
                leftover.unlink(missing_ok=True)
            raise
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
    with storage_errors(card_path, "read the model card", BundleError, write=False):
        data = card_path.read_bytes()
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(f"{card_path}: not valid JSON ({error}); the card is damaged") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{card_path}: not a {BUNDLE_FORMAT} card (a JSON {type(raw).__name__}, not an object)")
    if raw.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{card_path}: not a {BUNDLE_FORMAT} card (format {raw.get('format')!r})")
    version = raw.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > BUNDLE_VERSION:
        raise BundleError(
            f"{card_path}: bundle format version {version} is newer than this starlabel reads "
            f"({BUNDLE_VERSION}); upgrade starlabel"
        )
    try:
        return Card.model_validate(raw, strict=True)  # no coercion: "2" is not a member count
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(card)'}: {e['msg']}" for e in error.errors()[:5])
        more = f" (and {error.error_count() - 5} more)" if error.error_count() > 5 else ""
        raise BundleError(f"{card_path}: not a valid model card: {problems}{more}; the card is damaged") from None


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

    Only ``json`` and ``safetensors`` are used to read the files, and only ``card.json`` and
    ``weights.safetensors`` are opened: nothing in a bundle can run code.

    Raises
    ------
    BundleError
        For any inconsistency between the card, the weights and the installed architectures: a card that
        is damaged or names an architecture that is not installed, weights changed after the bundle was
        written or that are no safetensors file, members, labels, normalisation or inputs that do not fit
        the weights, options that build modules the member tensors do not fit.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from starlabel.coverage import InputCoverage, LabelCoverage

    path = Path(path)
    card = read_card(path)
    card_path = path / CARD_FILE
    weights = path / card.weights.file
    if not weights.is_file():
        raise BundleError(f"{path}: weights file {card.weights.file} is missing; the bundle is incomplete")
    with storage_errors(weights, "read the weights", BundleError, write=False):
        digest = sha256_file(weights)
    if digest != card.weights.sha256:
        raise BundleError(
            f"{weights}: SHA-256 {digest[:16]}… does not match the card's {card.weights.sha256[:16]}…; "
            "the weights were changed after the bundle was written: get the bundle again from its source"
        )
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise BundleError(
            f"{weights}: not a readable safetensors file ({error}); only safetensors weights are loaded (never "
            "pickles): get the bundle again from its source"
        ) from None
    _check_consistency(card, tensors, card_path)
    arch = _architecture(card, plugins, card_path)
    try:
        transform = InputTransform.from_parts(
            {k.removeprefix("inputs."): v.numpy() for k, v in tensors.items() if k.startswith("inputs.")},
            card.transform,
        )
        coverage = LabelCoverage.from_dict(card.coverage)
        ood = None
        if card.ood is not None:
            ood_arrays = {k.removeprefix("ood."): v.numpy() for k, v in tensors.items() if k.startswith("ood.")}
            ood = InputCoverage.from_arrays(ood_arrays, card.ood)
    except (KeyError, TypeError, ValueError) as error:
        raise BundleError(f"{card_path}: the input transform or coverage does not fit the weights: {error}") from None
    spec = transform.spec(card.input_spec.labels)
    if list(spec.arm_pixels) != card.input_spec.arm_pixels or spec.n_aux != card.input_spec.n_aux:
        raise BundleError(f"{card_path}: the card's input_spec does not match its input transform")
    if ood is not None and ood.mean.shape[0] != int(transform.pixels.size) + spec.n_aux:
        raise BundleError(
            f"{card_path}: the input-coverage model has {ood.mean.shape[0]} inputs, the network "
            f"{transform.pixels.size + spec.n_aux}; the card does not fit the weights"
        )
    members = []
    for k in range(card.members):
        prefix = f"member{k}."
        state = {name.removeprefix(prefix): t for name, t in tensors.items() if name.startswith(prefix)}
        try:
            module = arch.build(spec)
        except (ValueError, TypeError, RuntimeError, IndexError, KeyError) as error:
            raise BundleError(
                f"{card_path}: architecture {card.architecture.name} cannot be built for the card's input_spec "
                f"{card.input_spec.model_dump()}: {error}"
            ) from None
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise BundleError(
                f"{path}: member {k} does not fit architecture {card.architecture.name} with the card's options "
                f"and input_spec: {_state_dict_problem(error)}; the card and the weights do not belong together"
            ) from None
        if card.heteroscedastic and not getattr(module, "heteroscedastic", False):
            raise BundleError(
                f"{card_path}: heteroscedastic is true but architecture {card.architecture.name} with these options "
                "has no variance head; the card does not fit the weights"
            )
        if card.mc_dropout != bool(getattr(module, "mc_dropout", False)):
            raise BundleError(
                f"{card_path}: mc_dropout is {str(card.mc_dropout).lower()} but architecture "
                f"{card.architecture.name} with these options says {str(not card.mc_dropout).lower()}"
            )
        members.append(module.to(device).eval())
    return Bundle(path, card, members, transform, coverage, ood)


def _architecture(card: Card, plugins: Plugins, card_path: Path) -> Any:
    """The architecture the card names, with its options; a :class:`BundleError` for either problem."""
    try:
        arch_cls = plugins.architectures.get(card.architecture.name)
    except UnknownComponentError as error:
        raise BundleError(
            f"{card_path}: the model needs {error}; install the plugin that provides it (`starlabel plugins` "
            "lists what is installed)"
        ) from None
    try:
        return arch_cls(card.architecture.options)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(options)'}: {e['msg']}" for e in error.errors()[:5])
        raise BundleError(
            f"{card_path}: architecture.options are not valid options of {card.architecture.name}: {problems}"
        ) from None


def _state_dict_problem(error: RuntimeError) -> str:
    """The informative lines of a ``load_state_dict`` error, on one line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    details = [line for line in lines if not line.startswith("Error(s) in loading state_dict")]
    text = " ".join(details or lines[:1])
    return text if len(text) < 400 else text[:397] + "..."


def _check_consistency(card: Card, tensors: Mapping[str, Any], card_path: Path) -> None:
    """Refuse a card whose parts disagree with each other or with the weights, listing every problem."""
    problems: list[str] = []
    norm, spec = card.normalisation, card.input_spec
    labels = list(norm.label_names)
    if not labels:
        problems.append("normalisation.label_names is empty")
    if list(spec.labels) != labels:
        problems.append(f"input_spec.labels {spec.labels} differ from normalisation.label_names {labels}")
    for key in ("label_mean", "label_std"):
        if len(getattr(norm, key)) != len(labels):
            problems.append(f"normalisation.{key} has {len(getattr(norm, key))} values for {len(labels)} labels")
    if set(norm.label_units) != set(labels):
        problems.append(f"normalisation.label_units names {sorted(norm.label_units)}, the labels are {labels}")
    aux = list(norm.aux_columns)
    for key in ("aux_mean", "aux_std"):
        if len(getattr(norm, key)) != len(aux):
            problems.append(f"normalisation.{key} has {len(getattr(norm, key))} values for {len(aux)} aux columns")
    if card.transform.get("aux_columns") != aux:
        problems.append(
            f"transform.aux_columns {card.transform.get('aux_columns')} differ from normalisation.aux_columns {aux}"
        )
    if spec.n_aux != 2 * len(aux):
        problems.append(f"input_spec.n_aux is {spec.n_aux}, the {len(aux)} aux columns give {2 * len(aux)}")
    for key in ("label_mean", "aux_mean"):
        if not np.all(np.isfinite(getattr(norm, key))):
            problems.append(f"normalisation.{key} holds non-finite values")
    for key in ("label_std", "aux_std"):
        values = np.asarray(getattr(norm, key), dtype=float)
        if not np.all(np.isfinite(values) & (values > 0)):
            problems.append(f"normalisation.{key} must be finite and positive")
    scale = card.transform.get("flux_scale")
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not (math.isfinite(scale) and scale > 0):
        problems.append(f"transform.flux_scale must be a finite positive number, got {scale!r}")
    if card.transform.get("arm_pixels") != spec.arm_pixels:
        problems.append(
            f"transform.arm_pixels {card.transform.get('arm_pixels')} differ from input_spec.arm_pixels {spec.arm_pixels}"
        )
    pixels, mean = tensors.get("inputs.pixels"), tensors.get("inputs.flux_mean")
    if pixels is None or mean is None:
        problems.append("the weights hold no input transform (inputs.pixels, inputs.flux_mean)")
    elif pixels.ndim != 1 or mean.shape != pixels.shape or int(pixels.shape[0]) != sum(spec.arm_pixels):
        problems.append(
            f"the input transform in the weights has {tuple(pixels.shape)} pixels and a {tuple(mean.shape)} mean, "
            f"input_spec.arm_pixels sum to {sum(spec.arm_pixels)}"
        )
    else:
        n_grid = card.inputs.get("grid", {}).get("n_pixels") if isinstance(card.inputs.get("grid"), dict) else None
        if pixels.numel() and (int(pixels.min()) < 0 or (isinstance(n_grid, int) and int(pixels.max()) >= n_grid)):
            problems.append(f"the input transform's pixel indices lie outside the card's {n_grid}-pixel grid")
    if card.coverage.get("names") != labels:
        problems.append(f"coverage.names {card.coverage.get('names')} differ from the labels {labels}")
    if card.ood is not None:  # resid_scale is 0 when the model keeps every axis
        for key, positive in (("threshold", True), ("resid_scale", False)):
            value = card.ood.get(key)
            number = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
            if not number or value < 0 or (positive and value == 0):
                kind = "positive" if positive else "non-negative"
                problems.append(f"ood.{key} must be a finite {kind} number, got {value!r}")
    has_ood = any(name.startswith("ood.") for name in tensors)
    if (card.ood is not None) != has_ood:
        problems.append(
            "the card has an input-coverage model (ood) but the weights hold none"
            if card.ood is not None
            else "the weights hold an input-coverage model (ood.*) but the card's ood is null"
        )
    stored, strangers = set(), []
    for name in tensors:
        head = name.split(".", 1)[0]
        if head.startswith("member") and head[6:].isdigit():
            stored.add(int(head[6:]))
        elif head not in ("inputs", "ood"):
            strangers.append(name)
    if stored != set(range(card.members)):
        listed = ", ".join(f"member{k}" for k in sorted(stored)) or "none"
        problems.append(f"the card says {card.members} member(s), the weights hold {len(stored)} ({listed})")
    if strangers:
        problems.append(f"the weights hold tensors of no known part: {', '.join(sorted(strangers)[:5])}")
    if problems:
        raise BundleError(
            f"{card_path}: the card does not fit itself or the weights ("
            + "; ".join(problems)
            + "); the card was edited or damaged: get the bundle again from its source"
        )
