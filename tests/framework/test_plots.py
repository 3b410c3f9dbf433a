"""Galactocentric positions, the chemistry and Kiel figures, and ``starlabel plot``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from starlabel import plots
from starlabel.catalogue import CatalogueWriter, Column
from starlabel.cli_plot import plot_group
from starlabel.galactic import (
    BinEdgesError,
    PositionError,
    galactocentric_rz,
    gather_positions,
    parallax_quality,
    rz_bin_index,
)
from starlabel.plots import PlotError, flag_mask_from_text, plot_chemistry, plot_kiel
from starlabel.plugins import load_plugins
from starlabel.store import Store, StoreBatch, StoreLayout

R_EDGES = [2, 4, 6, 8, 10, 12, 14]
Z_EDGES = [0, 0.5, 1, 2, 3]


def sky(R: list[float], Z: list[float], phi_deg: list[float] | None = None) -> tuple[np.ndarray, ...]:
    """ICRS ra, dec (deg) and parallax (mas) of stars at Galactocentric (R, Z) kpc and azimuth phi."""
    import astropy.units as u
    from astropy.coordinates import ICRS, Galactocentric, SkyCoord

    R, Z = np.asarray(R, float), np.asarray(Z, float)
    phi = np.radians(phi_deg if phi_deg is not None else np.linspace(-40, 40, len(R)))
    star = SkyCoord(x=R * np.cos(phi) * u.kpc, y=R * np.sin(phi) * u.kpc, z=Z * u.kpc, frame=Galactocentric())
    icrs = star.transform_to(ICRS())
    return icrs.ra.deg, icrs.dec.deg, 1.0 / icrs.distance.to_value(u.kpc)


def write_catalogue(path: Path, data: dict[str, np.ndarray], units: dict[str, str] | None = None) -> Path:
    """A catalogue as `starlabel predict` writes it (float64 columns keep positions exact)."""
    units = units or {}
    columns = []
    for name, values in data.items():
        values = np.asarray(values)
        dtype = (
            "int64"
            if values.dtype.kind in "iu"
            else ("float64" if values.dtype.kind == "f" else f"<U{values.dtype.itemsize // 4}")
        )
        if name == "flag":
            dtype = "int32"
        columns.append(Column(name, dtype, units.get(name)))
    with CatalogueWriter(path, columns, n_parts=1, fingerprint={"test": path.name}) as writer:
        writer.write_part(0, data)
        writer.finish()
    return path


def labels(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {
        "teff": rng.uniform(4000, 6500, n),
        "logg": rng.uniform(1.0, 4.8, n),
        "m_h": rng.uniform(-1.0, 0.4, n),
        "alpha_m": rng.uniform(-0.1, 0.35, n),
    }
    for name in list(out):
        out[f"{name}_err"] = np.full(n, 0.05)
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def invoke(args: list[str]):  # noqa: ANN201
    return CliRunner().invoke(plot_group, args, obj=load_plugins(entry_points=False))


# ------------------------------------------------------------------------------------------- transform
def test_galactocentric_rz_recovers_known_positions_and_bins() -> None:
    R = [8.5, 5.0, 11.0, 16.0, 9.0, 4.1]
    Z = [0.25, 1.5, -0.7, 0.1, -3.5, 0.75]
    ra, dec, parallax = sky(R, Z, [10, -30, 170, 45, 0, 90])
    r, z = galactocentric_rz(ra, dec, parallax)
    np.testing.assert_allclose(r, R, atol=1e-6, rtol=0)
    np.testing.assert_allclose(z, Z, atol=1e-6, rtol=0)
    i_r, i_z = rz_bin_index(r, z, R_EDGES, Z_EDGES)
    # 8.5 → 8–10; 5 → 4–6; 11 → 10–12; 16 beyond 14; 9 → 8–10; 4.1 → 4–6
    assert i_r.tolist() == [3, 1, 4, -1, 3, 1]
    # |Z|: 0.25 → 0–0.5; 1.5 → 1–2; 0.7 (below the plane) → 0.5–1; 0.1 → 0–0.5; 3.5 beyond 3; 0.75 → 0.5–1
    assert i_z.tolist() == [0, 2, 1, 0, -1, 1]
    # a negative edge: signed Z bins
    assert rz_bin_index(r, z, R_EDGES, [-1, 0, 1, 2])[1].tolist() == [1, 2, 0, 1, -1, 1]
    # half-open bins: a value on an edge belongs to the bin above; the last edge is outside
    exact = rz_bin_index([2.0, 4.0, 14.0, np.nan], [0.0, -0.5, 0.5, 0.1], R_EDGES, Z_EDGES)
    assert [i.tolist() for i in exact] == [[0, 1, -1, -1], [0, 1, 1, 0]]


def test_sun_sits_at_astropy_default_position() -> None:
    r, z = galactocentric_rz([10.0, 250.0], [20.0, -60.0], [1e7, 1e7])  # 0.1 mpc away in two directions
    np.testing.assert_allclose(r, np.sqrt(8.122**2 - 0.0208**2), atol=1e-6)
    np.testing.assert_allclose(z, 0.0208, atol=1e-6)
    assert abs(r[0] - 8.122) < 1e-4


def test_invalid_parallaxes_give_nan_and_quality_cut() -> None:
    r, z = galactocentric_rz([10, 10, 10], [20, 20, 20], [-1.0, 0.0, np.nan])
    assert np.isnan(r).all() and np.isnan(z).all()
    parallax = np.array([1.0, 1.0, -0.5, 0.4, np.nan, 2.0])
    error = np.array([0.1, 0.25, 0.1, 0.1, 0.1, np.nan])
    nonpositive, low = parallax_quality(parallax, error, 5.0)
    assert nonpositive.tolist() == [False, False, True, False, True, False]
    assert low.tolist() == [False, True, False, True, False, True]  # S/N 10, 4, -, 4, -, unknown
    assert not parallax_quality(parallax, None, 5.0)[1].any()
    assert not parallax_quality(parallax, error, 0.0)[1].any()


def test_bad_bin_edges_are_refused() -> None:
    with pytest.raises(BinEdgesError, match=r"R bin edges: edges \[4.0, 2.0\] are not strictly increasing"):
        rz_bin_index([5.0], [0.1], [4, 2], Z_EDGES)
    with pytest.raises(BinEdgesError, match="at least two"):
        rz_bin_index([5.0], [0.1], R_EDGES, [1])


# ------------------------------------------------------------------------------------- chemistry figure
def chemistry_catalogue(path: Path) -> tuple[Path, dict[tuple[int, int], int]]:
    """Stars in known bins of R 4,6,8,10 × |Z| 0,1,2, plus one of each kind of excluded row."""
    good = [(5.0, 0.3)] * 4 + [(9.0, -1.4)] * 3 + [(7.0, 1.5)] * 2 + [(9.2, 0.6)]
    bad = [(8.5, 0.2)] * 6 + [(13.0, 0.4), (6.5, 2.5)]
    places = good + bad
    ra, dec, parallax = sky([p[0] for p in places], [p[1] for p in places])
    n = len(places)
    data = {"source_id": np.arange(n, dtype=np.int64) + 2**60, **labels(n)}
    error = parallax / 20
    flag = np.zeros(n, np.int32)
    g = len(good)
    flag[g - 1] = 2  # sparse: kept by the default mask 1|8
    flag[g + 0] = 1  # boundary
    flag[g + 1] = 8  # no_data (labels NaN too: counted once, as flagged)
    data["m_h"][g + 1] = np.nan
    data["alpha_m"][g + 2] = np.nan  # nan_labels
    parallax[g + 3] = -0.3  # parallax_nonpositive
    error[g + 4] = parallax[g + 4] / 4.0  # parallax_snr 4 < 5
    ra[g + 5] = np.nan  # no_position
    data.update(ra=ra, dec=dec, parallax=parallax, parallax_error=error, flag=flag)
    expected = {(0, 0): 4, (1, 2): 3, (1, 1): 2, (0, 2): 1}  # (i_z, i_r) → stars
    return write_catalogue(path, data, {"m_h": "dex", "alpha_m": "dex"}), expected


def test_chemistry_counts_exclusions_and_png(tmp_path: Path) -> None:
    catalogue, expected = chemistry_catalogue(tmp_path / "cat.fits")
    path, summary = plot_chemistry(catalogue, r_edges=[4, 6, 8, 10], z_edges=[0, 1, 2], dpi=40)
    assert path == tmp_path / "cat_chemistry.png" and path.is_file()
    width, height = png_size(path)
    size = plots.chemistry_figure_size(3, 2)  # 3 R columns × 2 Z rows of panels
    assert abs(width - size[0] * 40) <= 1 and abs(height - size[1] * 40) <= 1 and width > height
    counts = np.zeros((2, 3), int)
    for (iz, ir), k in expected.items():
        counts[iz, ir] = k
    assert summary["counts"] == counts.tolist()
    assert summary["plotted"] == 10 and summary["rows"] == 18
    assert summary["excluded"] == {
        "flagged": 2,
        "nan_labels": 1,
        "no_position": 1,
        "parallax_nonpositive": 1,
        "parallax_snr": 1,
        "outside_bins": 2,
    }
    # panels: top row (1 <= |Z| < 2) first, R increasing left to right
    assert [(p["r_kpc"], p["z_kpc"], p["n"]) for p in summary["panels"][:3]] == [
        ([4.0, 6.0], [1.0, 2.0], 0),
        ([6.0, 8.0], [1.0, 2.0], 2),
        ([8.0, 10.0], [1.0, 2.0], 3),
    ]
    assert summary["labels"] == {"metal": "m_h", "alpha": "alpha_m"}
    assert summary["positions"]["parallax"].startswith("catalogue ")
    json.dumps(summary)  # serialisable

    # no flag cut, no S/N cut: the flagged, low-S/N rows come back where they can
    _, loose = plot_chemistry(
        catalogue,
        tmp_path / "loose.png",
        r_edges=[4, 10],
        z_edges=[0, 2],
        flag_mask=0,
        parallax_snr_min=0,
        dpi=30,
    )
    assert loose["excluded"]["flagged"] == 0 and loose["excluded"]["parallax_snr"] == 0
    assert loose["plotted"] == 10 + 2  # the boundary and low-S/N stars at (8.5, 0.2); the no_data row is NaN
    assert loose["counts"] == [[12]] and loose["excluded"]["nan_labels"] == 2


def test_default_layout_has_24_panels(tmp_path: Path) -> None:
    places = [(3.0, 2.5), (13.0, 0.1), (8.1, 0.6), (7.9, 0.4)]
    ra, dec, parallax = sky([p[0] for p in places], [p[1] for p in places])
    data = {"source_id": np.arange(4, dtype=np.int64), **labels(4), "ra": ra, "dec": dec, "parallax": parallax}
    catalogue = write_catalogue(tmp_path / "c.parquet", data)
    _, summary = plot_chemistry(catalogue, tmp_path / "c.png", dpi=20)
    assert len(summary["panels"]) == 24 and summary["z_signed"] is False
    assert summary["panels"][0] == {"r_kpc": [2.0, 4.0], "z_kpc": [2.0, 3.0], "n": 1}  # top left
    assert summary["panels"][-1] == {"r_kpc": [12.0, 14.0], "z_kpc": [0.0, 0.5], "n": 1}  # bottom right
    assert summary["counts"][1][3] == 1 and summary["counts"][0][2] == 1  # (8.1, 0.6) and (7.9, 0.4)
    assert summary["notes"] == [
        "no flag column: no row excluded for flags",
        "no parallax_error column: no parallax S/N cut",
    ]


# ----------------------------------------------------------------------------------------- positions
def bare_catalogue(path: Path, ids: np.ndarray) -> Path:
    n = len(ids)
    return write_catalogue(path, {"source_id": ids, **labels(n), "flag": np.zeros(n, np.int32)})


def test_positions_joined_from_a_store_aux_group(tmp_path: Path) -> None:
    places = [(5.0, 0.2), (5.5, 0.3), (9.0, 1.2), (9.0, 0.4), (9.5, 0.6)]
    ra, dec, parallax = sky([p[0] for p in places], [p[1] for p in places])
    ids = np.array([11, 12, 13, 14, 15], dtype=np.int64)
    # store rows: shuffled, star 13 twice (the dropped copy has a bad parallax), star 15's parallax missing
    order = [3, 0, 2, 2, 1, 4]
    n = len(order)
    astrometry = np.stack([ra[order], dec[order], parallax[order], parallax[order] / 50], axis=1).astype(np.float32)
    astrometry[2, 2] = -5.0
    missing = np.zeros((n, 4), bool)
    missing[5, 2] = True
    store = Store.create(
        tmp_path / "s.zarr",
        StoreLayout(
            n_pixels=2,
            id_kind="int",
            aux={"phot": ["g"], "astrometry": ["ra", "dec", "parallax", "parallax_error"]},
            labels={},
        ),
        descriptor={"name": "toy"},
        descriptor_hash="abc",
        grid={"unit": "nm"},
        plugins={"toy": "1"},
    )
    store.append(
        StoreBatch(
            ids[order],
            np.ones((n, 2), np.float32),
            np.ones((n, 2), np.float32),
            np.zeros((n, 2), bool),
            np.ones(n, np.float32),
            {"phot": (np.ones((n, 1), np.float32), np.zeros((n, 1), bool)), "astrometry": (astrometry, missing)},
            {},
        )
    )
    store.set_keep(np.array([True, True, False, True, True, True]))
    store.finish({})
    catalogue = bare_catalogue(tmp_path / "cat.fits", np.array([15, 14, 13, 12, 11, 99], dtype=np.int64))

    result = invoke(
        [
            "chemistry",
            str(catalogue),
            "--positions",
            str(tmp_path / "s.zarr"),
            "--out",
            str(tmp_path / "a.png"),
            "--r-bins",
            "4,6,8,10",
            "--z-bins",
            "0,1,2",
            "--dpi",
            "30",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["counts"] == [[2, 0, 1], [0, 0, 1]]  # 11, 12 | 14 ; 13 at |Z| 1.2
    assert summary["excluded"]["no_position"] == 2  # 15 (parallax missing) and 99 (not in the store)
    assert summary["unmatched"] == 1
    assert summary["positions"]["parallax_error"] == f"store {tmp_path / 's.zarr'} aux/astrometry"
    assert (tmp_path / "a.png").is_file()


def test_positions_joined_from_a_csv_table_via_cli(tmp_path: Path) -> None:
    from astropy.table import Table

    places = [(7.0, -0.2), (7.5, 0.1), (11.0, -1.5)]
    ra, dec, parallax = sky([p[0] for p in places], [p[1] for p in places])
    Table({"star_id": ["a1", "b2", "c3"], "RA": ra, "DEC": dec, "parallax": parallax}).write(tmp_path / "pos.csv")
    catalogue = bare_catalogue(tmp_path / "cat.parquet", np.array(["c3", "a1", "b2", "zz"]))
    result = invoke(
        [
            "chemistry",
            str(catalogue),
            "--positions",
            str(tmp_path / "pos.csv"),
            "--id-column",
            "star_id",
            "--out",
            str(tmp_path / "t.png"),
            "--r-bins",
            "6,8,12",
            "--z-bins=-2,-1,0,1",
            "--dpi",
            "30",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["z_signed"] is True
    assert summary["counts"] == [[0, 1], [1, 0], [1, 0]]  # Z -1.5 (R 11) | -0.2 (R 7) | 0.1 (R 7.5)
    assert summary["excluded"]["no_position"] == 1 and summary["plotted"] == 3
    assert summary["notes"] == ["no parallax_error column: no parallax S/N cut"]
    assert summary["panels"][0]["z_kpc"] == [0.0, 1.0]  # highest Z at the top


def test_missing_position_columns_are_named(tmp_path: Path) -> None:
    catalogue = bare_catalogue(tmp_path / "cat.fits", np.arange(3, dtype=np.int64))
    result = invoke(["chemistry", str(catalogue), "--out", str(tmp_path / "x.png")])
    assert isinstance(result.exception, PositionError)
    message = str(result.exception)
    assert "missing position column(s) ra, dec, parallax" in message
    assert f"the catalogue {catalogue} (columns: source_id, teff" in message and "pass --positions" in message

    from astropy.table import Table

    Table({"source_id": [0, 1, 2], "ra": [1.0, 2, 3], "dec": [4.0, 5, 6]}).write(tmp_path / "p.csv")
    with pytest.raises(PositionError) as caught:
        plot_chemistry(catalogue, tmp_path / "x.png", positions=tmp_path / "p.csv")
    message = str(caught.value)
    assert message.startswith("missing position column(s) parallax (of ra, dec, parallax")
    assert f"and in the table {tmp_path / 'p.csv'} (columns: source_id, ra, dec)" in message
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(PositionError, match="no column 'star'.*--id-column"):
        gather_positions({"source_id": np.arange(3)}, "c.fits", tmp_path / "p.csv", id_column="star")


def test_label_choice_and_errors(tmp_path: Path) -> None:
    n = 3
    ra, dec, parallax = sky([8.0] * n, [0.2] * n)
    data = {
        "source_id": np.arange(n, dtype=np.int64),
        "fe_h": np.zeros(n),
        "fe_h_err": np.zeros(n),
        "alpha_fe": np.zeros(n),
        "alpha_fe_err": np.zeros(n),
        "ra": ra,
        "dec": dec,
        "parallax": parallax,
    }
    catalogue = write_catalogue(tmp_path / "c.fits", data)
    _, summary = plot_chemistry(catalogue, tmp_path / "c.png", r_edges=[6, 10], z_edges=[0, 1], dpi=20)
    assert summary["labels"] == {"metal": "fe_h", "alpha": "alpha_fe"} and summary["counts"] == [[3]]
    with pytest.raises(
        PlotError,
        match=r"no \[M/H\] column 'mh'\..* Label columns in the catalogue: fe_h, alpha_fe; choose one with --metal-label",
    ):
        plot_chemistry(catalogue, tmp_path / "c.png", metal_label="mh")
    only = write_catalogue(
        tmp_path / "d.fits", {"source_id": np.arange(n, dtype=np.int64), "teff": np.ones(n), "teff_err": np.ones(n)}
    )
    with pytest.raises(
        PlotError, match=r"no \[M/H\] column \(looked for m_h, fe_h, mh\)\. Label columns in the catalogue: teff"
    ):
        plot_chemistry(only)
    with pytest.raises(PlotError, match="name the output FILE.png"):
        plot_kiel(catalogue, tmp_path / "k.pdf")


def test_flag_mask_and_bin_options(tmp_path: Path) -> None:
    assert flag_mask_from_text("boundary|no_data") == 9 == flag_mask_from_text("9")
    assert flag_mask_from_text("0x10") == 16 and flag_mask_from_text("ood, sparse") == 6
    with pytest.raises(
        PlotError, match=r"'bogus' is not a flag.*boundary \(1\), sparse \(2\), ood \(4\), no_data \(8\)"
    ):
        flag_mask_from_text("boundary|bogus")
    catalogue = bare_catalogue(tmp_path / "cat.fits", np.arange(2, dtype=np.int64))
    result = invoke(["chemistry", str(catalogue), "--r-bins", "8,4"])
    assert result.exit_code == 2 and "--r-bins: edges [8.0, 4.0] are not strictly increasing" in result.output
    result = invoke(["chemistry", str(catalogue), "--r-bins", "-2,4"])
    assert result.exit_code == 2 and "start below 0" in result.output
    result = invoke(["kiel", str(catalogue), "--flag-mask", "nope"])
    assert result.exit_code == 2 and "'nope' is not a flag" in result.output


# ------------------------------------------------------------------------------------------------ kiel
def test_kiel_scatter_and_hexbin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 40
    data = {"source_id": np.arange(n, dtype=np.int64), **labels(n, 3), "flag": np.zeros(n, np.int32)}
    data["flag"][:3] = [1, 8, 4]  # 2 excluded by the default mask, ood kept
    data["logg"][5] = np.nan
    catalogue = write_catalogue(tmp_path / "k.fits", data, {"teff": "K", "logg": "dex", "m_h": "dex"})
    result = invoke(["kiel", str(catalogue), "--dpi", "40", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert Path(summary["out"]) == tmp_path / "k_kiel.png" and png_size(tmp_path / "k_kiel.png") == (256, 208)
    assert summary["mode"] == "scatter" and summary["panels"] == [{"n": 37}]
    assert summary["excluded"] == {"flagged": 2, "nan_labels": 1}
    assert summary["labels"] == {"teff": "teff", "logg": "logg", "colour": "m_h"}

    monkeypatch.setattr(plots, "KIEL_SCATTER_MAX", 10)
    _, hexed = plot_kiel(catalogue, tmp_path / "h.png", colour_label="alpha_m", flag_mask=0, dpi=30)
    assert hexed["mode"] == "hexbin" and hexed["plotted"] == 39 and hexed["labels"]["colour"] == "alpha_m"
    lo, hi = hexed["colour_range"]
    assert -0.1 <= lo < hi <= 0.35
