"""Every reader says no to the other surveys' files, and each survey file goes to its own reader."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from starlabel.identify import choose_reader
from starlabel.plugins import Plugins, load_plugins
from starlabel.testing import load_script

DATA = Path(__file__).resolve().parents[1] / "data"


def generator(relative: str) -> ModuleType:
    return load_script(DATA / relative)


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, str]:
    """One generated file per format → the reader that owns it."""
    out = tmp_path_factory.mktemp("formats")
    rvs = generator("starlabel_gaia/make_rvs.py")
    apogee = generator("starlabel_apogee/make_apogee.py").write(out / "apogee")
    eso = generator("starlabel_gaiaeso/make_gaiaeso.py").write(out / "eso")
    owned = {
        generator("starlabel_gaia/make_xp_library.py").write(out / "xp"): "gaia_xp_sampled",
        rvs.write_bulk(out / "rvs_bulk"): "gaia_rvs_dr3",
        rvs.write_datalink_csv(out / "rvs_csv", 0): "gaia_rvs_dr3",
        rvs.write_zip(out / "rvs_zip"): "gaia_rvs_dr3",
        apogee["aspcapstar"]: "apogee_aspcapstar",
        apogee["apvisit"]: "apogee_apvisit",
    }
    owned.update({path: "apogee_apstar" for key, path in apogee.items() if key.startswith("apstar:")})
    owned.update({path: "eso_sdp_1d" for key, path in eso.items() if path.suffix == ".fits" and "catalogue" not in key})
    return owned


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return load_plugins(environ={})


def test_each_file_goes_to_its_own_reader(samples: dict[Path, str], plugins: Plugins) -> None:
    assert len(set(samples.values())) >= 6
    for path, owner in samples.items():
        assert choose_reader(path, plugins.readers).name == owner, path.name


def test_no_reader_claims_another_surveys_file(samples: dict[Path, str], plugins: Plugins) -> None:
    for entry in plugins.readers:
        claimed = sorted(
            path.name for path, owner in samples.items() if owner != entry.cls.name and entry.cls.identify(path)
        )
        assert claimed == [], f"{entry.cls.name} claims {claimed}"
