"""The skid's load-wash-gradient method and a run's deviations from it, as inlet programmes."""

from __future__ import annotations

import numpy as np
import pytest

from process_models.chromatography.elution_method import ElutionMethod, MethodDeviation, adsorption_overrides
from process_models.chromatography.inlet import InletProgramError

COMPONENTS = ("salt", "lysozyme", "cytochrome", "ribonuclease")


def test_the_method_is_the_cadet_load_wash_elute_programme() -> None:
    program = ElutionMethod().program(COMPONENTS, 1500.0)
    c = program.concentration_at(np.array([5.0, 50.0, 90.0, 1500.0]))
    assert c[:, 0].tolist() == pytest.approx([50.0, 1.0, 1.0, 1.0])  # load: salt + every protein at 1 mM
    assert c[:, 1].tolist() == pytest.approx([50.0, 0.0, 0.0, 0.0])  # wash
    assert c[0, 2] == pytest.approx(100.0) and c[0, 3] == pytest.approx(382.0)  # gradient 100 -> 382 mM


def test_a_deviation_scales_the_titre_and_the_gradient_slope() -> None:
    method = ElutionMethod(feed_mol_per_m3={"cytochrome": 1.0, "ribonuclease": 0.3})
    program = method.program(COMPONENTS, 1000.0, MethodDeviation(feed_factors={"cytochrome": 0.7},
                                                                 gradient_slope_factor=0.85))
    load = program.concentration_at(np.array([5.0]))[:, 0]
    assert load.tolist() == pytest.approx([50.0, 0.0, 0.7, 0.3])
    salt = program.concentration_at(np.array([90.0, 1000.0]))[0]
    assert (salt[1] - salt[0]) / 910.0 == pytest.approx(0.85 * 282.0 / 1410.0)
    assert adsorption_overrides({"adsorption_rate_cytochrome": 1.59}, {"cytochrome": 0.85}) == {
        "adsorption_rate_cytochrome": pytest.approx(1.3515)}


def test_bad_deviations_and_components_are_refused() -> None:
    with pytest.raises(InletProgramError, match=r"feed_factors\['cytochrome'\] = 0"):
        MethodDeviation(feed_factors={"cytochrome": 0})
    with pytest.raises(InletProgramError, match="gradient_slope_factor = -1"):
        MethodDeviation(gradient_slope_factor=-1.0)
    with pytest.raises(InletProgramError, match=r"component\(s\) \['insulin'\] not in the column"):
        ElutionMethod(feed_mol_per_m3={"insulin": 1.0}).program(COMPONENTS, 1000.0)
    with pytest.raises(InletProgramError, match="no parameter 'adsorption_rate_insulin'"):
        adsorption_overrides({"adsorption_rate_cytochrome": 1.59}, {"insulin": 1.1})
