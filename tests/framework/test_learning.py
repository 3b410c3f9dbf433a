"""Training, bundles and prediction on small generated stores with a known label → spectrum relation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from learning_helpers import make_learning_store, write_descriptor

from starlabel.bundle import BundleError, load_bundle, read_card
from starlabel.catalogue import read_catalogue
from starlabel.descriptor import load_descriptor
from starlabel.losses import masked_loss
from starlabel.plugins import load_plugins
from starlabel.predict import FLAGS, PredictionError, predict
from starlabel.store import Store
from starlabel.train import TrainingError, TrainOptions, robust_metrics, train

QUIET = TrainOptions(progress=False)


@pytest.fixture(scope="module")
def plugins():  # type: ignore[no-untyped-def]
    return load_plugins(entry_points=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, plugins) -> tuple[Path, Path, Path]:  # type: ignore[no-untyped-def]
    """A 2-member hybrid_cnn trained on 1,500 stars: (descriptor, store, bundle)."""
    folder = tmp_path_factory.mktemp("learn")
    descriptor = write_descriptor(folder, ensemble=2, epochs=25)
    store = make_learning_store(folder, 1500, descriptor=descriptor)
    bundle = folder / "bundle"
    train(load_descriptor(descriptor, plugins), plugins, store, bundle, QUIET)
    return descriptor, store, bundle


def truth_of(store_path: Path, ids: np.ndarray) -> dict[str, np.ndarray]:
    store = Store.open(store_path)
    all_ids = np.asarray(store.array("source_id")[:])
    order = {int(i): k for k, i in enumerate(all_ids)}
    rows = np.array([order[int(i)] for i in ids])
    return {n: np.asarray(store.array(f"labels/{n}")[:])[rows] for n in store.layout.labels} | {
        f"{n}_ok": np.asarray(store.array(f"labels/{n}_ok")[:])[rows] for n in store.layout.labels
    }


# ------------------------------------------------------------------------------------------------ losses
def test_masked_loss_equals_loss_on_labelled_subset() -> None:
    g = torch.Generator().manual_seed(0)
    mean, log_var, target = (torch.randn(32, 3, generator=g) for _ in range(3))
    err = torch.rand(32, 3, generator=g)
    ok = torch.rand(32, 3, generator=g) > 0.3
    target_with_junk = torch.where(ok, target, torch.full_like(target, 1e6))
    for kind in ("mse", "gaussian_nll"):
        s, c = masked_loss(mean, log_var, target_with_junk, ok, err, kind)
        m, lv, t, e = mean[ok], log_var[ok], target[ok], err[ok]
        if kind == "mse":
            expected = ((m - t) ** 2).mean()
        else:
            var = torch.exp(lv) + e**2
            expected = (0.5 * (torch.log(var) + (m - t) ** 2 / var)).mean()
        assert int(c) == int(ok.sum())
        torch.testing.assert_close(s / c, expected)


def test_masked_loss_has_no_gradient_from_missing_labels() -> None:
    mean = torch.zeros(4, 2, requires_grad=True)
    ok = torch.tensor([[True, False]] * 4)
    s, _ = masked_loss(mean, None, torch.ones(4, 2), ok)
    s.backward()
    assert torch.all(mean.grad[:, 1] == 0) and torch.all(mean.grad[:, 0] != 0)


def test_gaussian_nll_needs_a_variance_head() -> None:
    with pytest.raises(ValueError, match="variance head"):
        masked_loss(torch.zeros(2, 1), None, torch.zeros(2, 1), torch.ones(2, 1, dtype=torch.bool), kind="gaussian_nll")


# ------------------------------------------------------------------------------------------- learning
def test_learns_the_known_relation_on_held_out_stars(trained, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, store, bundle = trained
    out = tmp_path / "test.parquet"
    report = predict(bundle, store, out, plugins, split="test", progress=False)
    columns, meta = read_catalogue(out)
    assert report.rows == len(columns["source_id"]) > 150
    truth = truth_of(store, columns["source_id"])
    pred = np.stack([columns["teff"], columns["m_h"]], axis=1).astype(np.float64)
    ok = np.stack([truth["teff_ok"], truth["m_h_ok"]], axis=1)
    metrics = robust_metrics(pred, np.stack([truth["teff"], truth["m_h"]], axis=1), ok, ["teff", "m_h"])
    # labels span 1600 K and 1 dex; S/N 100 spectra determine them to far better than the label spread
    assert metrics["teff"]["scatter"] < 60 and abs(metrics["teff"]["bias"]) < 20
    assert metrics["m_h"]["scatter"] < 0.05 and abs(metrics["m_h"]["bias"]) < 0.02
    assert meta["units"]["teff"] == "K" and meta["units"]["m_h"] == "dex"


def test_card_describes_the_model(trained) -> None:  # type: ignore[no-untyped-def]
    _, store, bundle = trained
    card = read_card(bundle)
    assert card.architecture.name == "hybrid_cnn" and card.members == 2
    assert card.input_spec.arm_pixels == [81] and card.input_spec.n_aux == 2
    assert card.normalisation.label_names == ["teff", "m_h"]
    assert card.normalisation.label_units == {"teff": "K", "m_h": "dex"}
    assert card.inputs["grid"]["n_pixels"] == 81
    lo, hi = card.coverage["lo"], card.coverage["hi"]
    assert 4200 <= lo[0] < 4300 and 5700 < hi[0] <= 5800 and -0.5 <= lo[1] < -0.45
    assert card.training["loss"] == "mse" and len(card.training["members"]) == 2
    seeds = {m["seed"] for m in card.training["members"]}
    assert len(seeds) == 2
    assert set(card.metrics["valid"]) == {"teff", "m_h"}
    assert not (bundle / "_work").exists()
    raw = json.loads((bundle / "card.json").read_text())
    assert raw["weights"]["file"] == "weights.safetensors"


def test_bundle_round_trip_predictions_are_bit_identical(trained, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, store, bundle = trained
    a, b = tmp_path / "a.fits", tmp_path / "b.parquet"
    predict(bundle, store, a, plugins, split="valid", progress=False)
    predict(bundle, store, b, plugins, split="valid", progress=False)
    ca, _ = read_catalogue(a)
    cb, _ = read_catalogue(b)
    assert list(ca) == list(cb) and list(ca)[0] == "source_id"
    for name in ca:
        np.testing.assert_array_equal(ca[name], cb[name])
    # the valid metrics the trainer measured with its in-memory members equal those of the reloaded bundle
    truth = truth_of(store, ca["source_id"])
    pred = np.stack([ca["teff"], ca["m_h"]], axis=1).astype(np.float64)
    ok = np.stack([truth["teff_ok"], truth["m_h_ok"]], axis=1)
    again = robust_metrics(pred, np.stack([truth["teff"], truth["m_h"]], axis=1), ok, ["teff", "m_h"])
    card = read_card(bundle)
    for name in ("teff", "m_h"):
        assert again[name]["n"] == card.metrics["valid"][name]["n"]
        assert again[name]["scatter"] == pytest.approx(card.metrics["valid"][name]["scatter"], rel=1e-5)


def test_catalogue_columns_units_and_flag_documentation(trained, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, store, bundle = trained
    out = tmp_path / "all.fits"
    predict(bundle, store, out, plugins, progress=False)
    columns, meta = read_catalogue(out)
    assert list(columns)[:3] == ["source_id", "teff", "teff_err"]
    assert len(columns["source_id"]) == 1500
    assert np.all(columns["teff_err"] > 0) and np.all(np.isfinite(columns["teff_err"]))
    np.testing.assert_allclose(columns["teff_err"], columns["teff_err_ensemble"], rtol=1e-6)  # no MC, no variance head
    comments = " ".join(meta["comments"])
    for name, (bit, _) in FLAGS.items():
        assert f"flag bit {bit} ({name})" in comments
    assert meta["descriptions"]["flag_boundary"].startswith("bit i set")


def test_mismatched_bundle_is_refused(trained, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, bundle = trained
    other = write_descriptor(tmp_path / "other")
    text = other.read_text().replace("stop: 520.0", "stop: 530.0")
    other.write_text(text)
    store = make_learning_store(tmp_path / "other", 64, descriptor=other)
    with pytest.raises(BundleError, match=r"inputs differ .*grid.*\n  grid: bundle 81 px 500.0–520.0 nm \(linear\); store 121 px"):
        predict(bundle, store, tmp_path / "x.fits", plugins, progress=False)
    assert not (tmp_path / "x.fits").exists()


def test_flags_no_data_ood_and_boundary(trained, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    descriptor, _, bundle = trained
    store_path = make_learning_store(tmp_path, 40, seed=9, descriptor=descriptor)
    store = Store.open(store_path, "r+")
    flux = np.asarray(store.array("flux")[:])
    mask = np.asarray(store.array("mask")[:])
    mask[0] = True  # no usable pixel
    flux[1] = 1.0 + np.random.default_rng(1).normal(0, 0.5, flux.shape[1])  # nothing like a training spectrum
    store.array("mask")[:] = mask
    store.array("flux")[:] = flux
    out = tmp_path / "flags.parquet"
    report = predict(bundle, store_path, out, plugins, progress=False)
    cols, _ = read_catalogue(out)
    assert cols["flag"][0] & FLAGS["no_data"][0] and np.isnan(cols["teff"][0])
    assert report.no_data_ids == [str(cols["source_id"][0])]
    assert cols["flag"][1] & FLAGS["ood"][0] and cols["ood_score"][1] > 1
    assert np.median(cols["ood_score"][2:]) < 1
    outside = (cols["teff"] < 4200) | (cols["teff"] > 5800)
    assert np.array_equal((cols["flag_boundary"] & 1) != 0, outside)  # NaN (no_data) rows carry no boundary bit
    with pytest.raises(PredictionError, match=r"source_id \d+ \(chunk 0, from row 0\) has no usable pixel"):
        predict(bundle, store_path, tmp_path / "strict.parquet", plugins, strict=True, progress=False)


def test_boundary_flag_for_labels_beyond_the_training_range(trained, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, bundle = trained
    loaded = load_bundle(bundle, plugins)
    pred = np.array([[5000.0, 0.0], [6500.0, 0.0], [5000.0, -0.9], [3000.0, 0.9]])
    assert loaded.coverage.outside(pred).tolist() == [0, 1, 2, 3]


# --------------------------------------------------------------------------------------- ensembles
def test_ensemble_spread_shrinks_as_training_data_grow(plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spreads = []
    for n in (200, 1600):
        folder = tmp_path / str(n)
        descriptor = write_descriptor(folder, ensemble=3, epochs=10, patience=10)
        store = make_learning_store(folder, n, descriptor=descriptor, seed=2)
        probe = make_learning_store(folder, 300, descriptor=descriptor, seed=77, name="probe.zarr")
        train(load_descriptor(descriptor, plugins), plugins, store, folder / "b", QUIET)
        predict(folder / "b", probe, folder / "p.parquet", plugins, progress=False)
        cols, _ = read_catalogue(folder / "p.parquet")
        spreads.append((np.median(cols["teff_err_ensemble"]), np.median(cols["m_h_err_ensemble"])))
    print("median ensemble spread (teff K, m_h dex) for 200 and 1600 stars:", spreads)
    assert spreads[1][0] < 0.7 * spreads[0][0] and spreads[1][1] < 0.7 * spreads[0][1], spreads


def test_members_use_different_train_valid_divisions_but_the_same_test_stars() -> None:
    from starlabel.splits import TEST, assign_splits, member_splits

    ids = np.arange(10**12, 10**12 + 5000, dtype=np.int64)
    base = assign_splits(ids, 3, 0.7, 0.15)
    m0, m1 = member_splits(ids, 3, 0.7, 0.15, 0), member_splits(ids, 3, 0.7, 0.15, 1)
    assert np.array_equal(m0 == TEST, base == TEST) and np.array_equal(m1 == TEST, base == TEST)
    assert (m0 != m1).mean() > 0.1
    assert abs((m0 == 0).mean() - 0.7) < 0.03


# ------------------------------------------------------------------------------------ training runs
def test_training_refuses_what_it_cannot_do(trained, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    descriptor, store, bundle = trained
    resolved = load_descriptor(descriptor, plugins)
    with pytest.raises(TrainingError, match="a finished bundle is already there; use --overwrite"):
        train(resolved, plugins, store, bundle, QUIET)
    with pytest.raises(TrainingError, match="--freeze-trunk needs --init-from"):
        train(resolved, plugins, store, tmp_path / "b", TrainOptions(freeze_trunk=True, progress=False))
    no_net = tmp_path / "nonet.yaml"
    no_net.write_text(descriptor.read_text().split("network:")[0] + "training:" + descriptor.read_text().split("training:")[1])
    with pytest.raises(TrainingError, match="has no 'network:' section; add one, e.g. network: {architecture: hybrid_cnn} "):
        train(load_descriptor(no_net, plugins), plugins, store, tmp_path / "b", QUIET)
    nll = write_descriptor(tmp_path / "nll", loss="gaussian_nll")
    with pytest.raises(TrainingError, match="gaussian_nll needs a variance head"):
        train(load_descriptor(nll, plugins), plugins, store, tmp_path / "b", QUIET)
    other = write_descriptor(tmp_path / "o")
    other.write_text(other.read_text().replace("step: 0.25", "step: 0.5"))
    with pytest.raises(TrainingError, match=r"was ingested with a descriptor whose grid differ"):
        train(load_descriptor(other, plugins), plugins, store, tmp_path / "b", QUIET)


def test_interrupted_run_needs_resume(plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    descriptor = write_descriptor(tmp_path, epochs=2)
    store = make_learning_store(tmp_path, 200, descriptor=descriptor)
    out = tmp_path / "b"
    (out / "_work").mkdir(parents=True)
    (out / "_work" / "run.json").write_text(json.dumps({"descriptor_hash": "something else"}))
    resolved = load_descriptor(descriptor, plugins)
    with pytest.raises(TrainingError, match="holds an interrupted training run; add --resume"):
        train(resolved, plugins, store, out, QUIET)
    with pytest.raises(TrainingError, match=r"started with different inputs \(.*descriptor_hash"):
        train(resolved, plugins, store, out, TrainOptions(resume=True, progress=False))
    report = train(resolved, plugins, store, out, TrainOptions(overwrite=True, progress=False))
    assert (report.bundle / "card.json").is_file()


def test_heteroscedastic_mc_dropout_network_reports_each_uncertainty(plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    descriptor = write_descriptor(
        tmp_path, epochs=4, network={"architecture": "bcnn", "options": {}}, mc_samples=8
    )
    store = make_learning_store(tmp_path, 300, descriptor=descriptor)
    train(load_descriptor(descriptor, plugins), plugins, store, tmp_path / "b", QUIET)
    card = read_card(tmp_path / "b")
    assert card.training["loss"] == "gaussian_nll" and card.heteroscedastic and card.mc_dropout
    predict(tmp_path / "b", store, tmp_path / "p.parquet", plugins, progress=False)
    cols, _ = read_catalogue(tmp_path / "p.parquet")
    total = np.sqrt(cols["teff_err_ensemble"] ** 2 + cols["teff_err_mc"] ** 2 + cols["teff_err_model"] ** 2)
    np.testing.assert_allclose(cols["teff_err"], total, rtol=1e-5)
    assert np.all(cols["teff_err_mc"] > 0) and np.all(cols["teff_err_model"] > 0)
    assert np.all(cols["teff_err_ensemble"] == 0)  # one member
    predict(tmp_path / "b", store, tmp_path / "q.parquet", plugins, progress=False)
    again, _ = read_catalogue(tmp_path / "q.parquet")
    np.testing.assert_array_equal(again["teff_err_mc"], cols["teff_err_mc"])  # MC passes are seeded per chunk


def test_fine_tuning_with_a_frozen_trunk(trained, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    descriptor, store, bundle = trained
    source = load_bundle(bundle, plugins)
    resolved = load_descriptor(descriptor, plugins)
    options = TrainOptions(init_from=bundle, freeze_trunk=True, epochs=2, ensemble=1, progress=False)
    train(resolved, plugins, store, tmp_path / "tuned", options)
    tuned = load_bundle(tmp_path / "tuned", plugins)
    before, after = source.members[0].state_dict(), tuned.members[0].state_dict()
    trunk = [k for k in before if k.startswith("trunk.")]
    head = [k for k in before if not k.startswith("trunk.")]
    assert trunk and head
    assert all(torch.equal(before[k], after[k]) for k in trunk)
    assert any(not torch.equal(before[k], after[k]) for k in head)
    assert read_card(tmp_path / "tuned").training["freeze_trunk"] is True


def test_augmented_training_is_reproducible(plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    descriptor = write_descriptor(
        tmp_path, epochs=2, augment={"snr": [20, 50], "rv_kms": 20.0, "mask_fraction": 0.1}
    )
    store = make_learning_store(tmp_path, 200, descriptor=descriptor)
    resolved = load_descriptor(descriptor, plugins)
    train(resolved, plugins, store, tmp_path / "a", QUIET)
    train(resolved, plugins, store, tmp_path / "b", QUIET)
    assert (tmp_path / "a" / "weights.safetensors").read_bytes() == (tmp_path / "b" / "weights.safetensors").read_bytes()
    plain = write_descriptor(tmp_path / "plain", epochs=2)
    train(load_descriptor(plain, plugins), plugins, store, tmp_path / "c", QUIET)  # same inputs, no augmentation
    assert (tmp_path / "a" / "weights.safetensors").read_bytes() != (tmp_path / "c" / "weights.safetensors").read_bytes()


def test_store_batch_mode_matches_row_mode(tmp_path: Path) -> None:
    from starlabel.data import SplitSpec, StoreDataset, make_loader

    store = make_learning_store(tmp_path, 300, chunk_rows=64)
    spec = SplitSpec(1, 0.6, 0.2)
    rows = [int(r) for b in make_loader(StoreDataset(store, "train", spec, shuffle=False), 16) for r in b["row"]]
    batched = [int(r) for b in make_loader(StoreDataset(store, "train", spec, shuffle=False, batch_size=16)) for r in b["row"]]
    assert rows == batched
    shuffled = [
        int(r) for b in make_loader(StoreDataset(store, "train", spec, batch_size=16, buffer_rows=50)) for r in b["row"]
    ]
    assert sorted(shuffled) == sorted(rows) and shuffled != rows


def test_multi_arm_instrument_gets_one_branch_per_arm_and_string_ids_survive(plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arms = [{"name": "blue", "start": 500.0, "stop": 507.0}, {"name": "red", "start": 508.0, "stop": 520.0}]
    descriptor = write_descriptor(tmp_path, epochs=2, arms=arms)
    store = make_learning_store(tmp_path, 200, descriptor=descriptor, string_ids=True)
    train(load_descriptor(descriptor, plugins), plugins, store, tmp_path / "b", QUIET)
    card = read_card(tmp_path / "b")
    assert card.input_spec.arm_pixels == [29, 49]  # 500-507 nm and 508-520 nm at 0.25 nm; 507.25-507.75 in no arm
    assert len(load_bundle(tmp_path / "b", plugins).members[0].trunk) == 2
    predict(tmp_path / "b", store, tmp_path / "p.fits", plugins, progress=False)
    cols, _ = read_catalogue(tmp_path / "p.fits")
    ids = np.asarray(Store.open(store).array("source_id")[:])
    assert cols["source_id"].tolist() == ids.tolist() and cols["source_id"][0].startswith("star-")


def test_input_coverage_is_fitted_on_the_whole_store_even_when_it_is_ordered(plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    descriptor = write_descriptor(tmp_path, epochs=1)
    store = make_learning_store(tmp_path, 3000, descriptor=descriptor, sort_by_teff=True)
    resolved = load_descriptor(descriptor, plugins)
    from starlabel import train as train_module

    original = train_module._input_sample
    train_module._input_sample = lambda run, spec, limit: original(run, spec, 500)  # a sample of 1 in 4 stars
    try:
        train(resolved, plugins, store, tmp_path / "b", QUIET)
    finally:
        train_module._input_sample = original
    predict(tmp_path / "b", store, tmp_path / "p.parquet", plugins, split="train", progress=False)
    cols, _ = read_catalogue(tmp_path / "p.parquet")
    hot = cols["teff"] > 5400
    assert (cols["flag"] & FLAGS["ood"][0] != 0).mean() < 0.01
    assert (cols["flag"][hot] & FLAGS["ood"][0] != 0).mean() < 0.02


def test_runs_killed_after_their_final_write_are_finished_on_rerun(trained, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil
    import subprocess
    import sys

    descriptor, store, bundle = trained
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    (copy / "_work" / "member0").mkdir(parents=True)  # killed after writing the bundle, before tidying up
    report = train(load_descriptor(descriptor, plugins), plugins, store, copy, TrainOptions(resume=True, progress=False))
    assert not (copy / "_work").exists() and report.metrics == read_card(bundle).metrics
    out = tmp_path / "cat.fits"
    predict(bundle, store, out, plugins, split="valid", progress=False)
    written = out.read_bytes()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    Path(str(out) + ".parts").mkdir()
    Path(str(out) + ".lock").write_text(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename, "token": "t"}))
    again = predict(bundle, store, out, plugins, split="valid", progress=False)
    assert again.rows == len(read_catalogue(out)[0]["source_id"]) and out.read_bytes() == written
    assert not Path(str(out) + ".parts").exists() and not Path(str(out) + ".lock").exists()
    with pytest.raises(Exception, match="already exists; use --overwrite"):
        predict(bundle, store, out, plugins, split="test", progress=False)  # another run's output is not clobbered
