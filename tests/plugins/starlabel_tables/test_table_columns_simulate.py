"""``table_columns.simulate``: population values found by name → a table file → ``load`` returns them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from starlabel.containers import Population
from starlabel.errors import SimulationError
from starlabel.plugins import Plugins
from starlabel_tables.columns_simulate import BAND_ALIASES, normalised

IDS = np.array([4_000_000_000_000_000_001, 4_000_000_000_000_000_002, 9], dtype=np.int64)


def population() -> Population:
    distance = np.array([100.0, 2000.0, 8000.0])
    return Population(
        source_id=IDS,
        labels={
            "teff": np.array([5772.0, 4500.0, 6300.0]),
            "logg": np.array([4.44, 2.2, 4.1]),
            "m_h": np.array([0.0, -0.5, -1.5]),
            "alpha_m": np.array([0.0, 0.25, 0.35]),
            "mg_fe": np.array([0.01, 0.3, 0.4]),
        },
        mass=np.array([1.0, 1.1, 0.8]),
        radius=np.array([1.0, 12.0, 1.3]),
        distance=distance,
        ra=np.array([10.0, 20.0, 30.0]),
        dec=np.array([-5.0, 0.0, 60.0]),
        parallax=1000.0 / distance,
        vrad=np.array([1.0, -50.0, 200.0]),
        component=np.array(["thin", "thick", "halo"]),
        magnitudes={
            "V": np.array([9.8, 15.1, 18.2]),
            "J": np.array([8.4, 12.1, 17.0]),
            "H": np.array([8.1, 11.4, 16.7]),
            "K": np.array([8.0, 11.2, 16.6]),
        },
    )


COLUMNS = {
    "j": "j_m",
    "h": "H",
    "ks": "K_s",
    "kmag": "KMAG",
    "v": "Vmag",
    "teff": "TEFF",
    "mg": "Mg_Fe",
    "plx": "parallax",
    "rv": "RV",
    "dist": "distance",
    "mass": "MASS",
    "radius": "radius",
    "dec": "DEC",
}


def provider(plugins: Plugins, columns: dict[str, str], id_column: str = "source_id"):  # type: ignore[no-untyped-def]
    return plugins.auxiliary.get("table_columns")({"id_column": id_column, "columns": columns})


def test_simulate_finds_population_values(starlabel_plugins: Plugins) -> None:
    pop = population()
    out = provider(starlabel_plugins, COLUMNS).simulate(pop, IDS)
    assert list(out) == ["source_id", *COLUMNS.values()]
    assert out["source_id"].tolist() == IDS.tolist()
    expected = {
        "j_m": pop.magnitudes["J"],
        "H": pop.magnitudes["H"],
        "K_s": pop.magnitudes["K"],
        "KMAG": pop.magnitudes["K"],
        "Vmag": pop.magnitudes["V"],
        "TEFF": pop.labels["teff"],
        "Mg_Fe": pop.labels["mg_fe"],
        "parallax": pop.parallax,
        "RV": pop.vrad,
        "distance": pop.distance,
        "MASS": pop.mass,
        "radius": pop.radius,
        "DEC": pop.dec,
    }
    for column, values in expected.items():
        np.testing.assert_array_equal(out[column], values, err_msg=column)


def test_input_name_is_tried_when_the_column_name_is_unknown(starlabel_plugins: Plugins) -> None:
    out = provider(starlabel_plugins, {"k": "phot_k_2mass_corrected"}).simulate(population(), IDS)
    np.testing.assert_array_equal(out["phot_k_2mass_corrected"], population().magnitudes["K"])


@pytest.mark.parametrize("suffix", ["fits", "csv"])
def test_simulated_table_loads_back(suffix: str, tmp_path: Path, starlabel_plugins: Plugins) -> None:
    from astropy.table import Table

    columns = {"j": "j_m", "h": "h_m", "k": "k_m", "teff": "TEFF"}
    aux = provider(starlabel_plugins, columns, id_column="ID")
    ids = np.array(["2M00000001+0000001", "2M00000002+0000002", "2M00000003+0000003"])
    path = tmp_path / f"aux.{suffix}"
    Table(aux.simulate(population(), ids)).write(path)
    loaded = aux.load([path])
    assert loaded.source_id.tolist() == ids.tolist()
    assert loaded.columns == ["j", "h", "k", "teff"]
    pop = population()
    np.testing.assert_array_equal(
        loaded.values, np.stack([pop.magnitudes["J"], pop.magnitudes["H"], pop.magnitudes["K"], pop.labels["teff"]], 1)
    )
    assert not loaded.missing.any()


def test_int64_ids_survive_fits(tmp_path: Path, starlabel_plugins: Plugins) -> None:
    from astropy.table import Table

    aux = provider(starlabel_plugins, {"g": "V"})
    path = tmp_path / "aux.fits"
    Table(aux.simulate(population(), IDS)).write(path)
    loaded = aux.load([path])
    assert loaded.source_id.dtype == np.int64 and loaded.source_id.tolist() == IDS.tolist()


def test_unknown_column_names_provider_column_and_offer(starlabel_plugins: Plugins) -> None:
    aux = provider(starlabel_plugins, {"teff": "TEFF", "w1": "W1MPRO"})
    with pytest.raises(SimulationError) as info:
        aux.simulate(population(), IDS)
    message = str(info.value)
    assert message.startswith("auxiliary provider 'table_columns' cannot simulate column 'W1MPRO' (input 'w1')")
    assert "magnitudes V, J, H, K" in message
    assert "labels teff, logg, m_h, alpha_m, mg_fe" in message
    assert "fields ra, dec, parallax, distance, vrad, mass, radius" in message
    assert "K: k, ks, kmag" in message


def test_band_absent_from_population_is_an_error(starlabel_plugins: Plugins) -> None:
    with pytest.raises(SimulationError, match=r"cannot simulate column 'B' .*magnitudes V, J, H, K"):
        provider(starlabel_plugins, {"b": "B"}).simulate(population(), IDS)


def test_ids_must_match_the_population(starlabel_plugins: Plugins) -> None:
    with pytest.raises(SimulationError, match=r"got 2 ids for 3 stars"):
        provider(starlabel_plugins, {"v": "V"}).simulate(population(), IDS[:2])


def test_aliases_are_normalised_and_unambiguous() -> None:
    assert normalised("K_s") == "ks" and normalised("j_m") == "jm" and normalised("Ks-mag") == "ksmag"
    names = [name for aliases in BAND_ALIASES.values() for name in aliases]
    assert len(names) == len(set(names))
