"""The shared validators (devices.validation) and hashed seeds (devices.seeding)."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from devices.seeding import derive_seed, make_generator
from devices.validation import check_bool, check_choice, check_int, check_real, check_seed, check_shape


@pytest.mark.parametrize("value", [True, 2.0, 2.9, "3", None, [1]])
def test_check_int_refuses_non_integers(value):
    with pytest.raises(ValueError, match="n must be an integer"):
        check_int("n", value, low=0)


def test_check_int_range_and_numpy():
    assert check_int("n", np.int64(5), low=1) == 5 and type(check_int("n", np.int64(5))) is int
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 3\], got 4"):
        check_int("n", 4, low=1, high=3)


@pytest.mark.parametrize("value", [True, "0.01", float("nan"), float("inf"), None, [0.1]])
def test_check_real_refuses_bools_strings_and_non_finite(value):
    with pytest.raises(ValueError, match="x must be"):
        check_real("x", value, low=0.0)


def test_check_real_bounds_and_inf():
    assert check_real("x", 3, low=0.0) == 3.0
    assert math.isinf(check_real("x", math.inf, low=0.0, allow_inf=True))
    with pytest.raises(ValueError, match=r"x must be in \(0, inf\), got 0"):
        check_real("x", 0.0, low=0.0, low_open=True)


def test_check_choice_bool_shape_seed():
    assert check_choice("m", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"m must be one of \[1, 2\], got '1'"):
        check_choice("m", "1", (1, 2))
    with pytest.raises(ValueError, match="verify must be true or false"):
        check_bool("verify", "no")
    assert check_shape(4) == (4,) and check_shape([2, 3]) == (2, 3)
    for bad in ("64", (2.7, 3), (), (0, 2), (True, 2)):
        with pytest.raises(ValueError, match="shape"):
            check_shape(bad)
    for bad in (1.9, -1, 2**63, "1"):
        with pytest.raises(ValueError, match="seed must be an integer"):
            check_seed("seed", bad)


def test_derived_seeds_depend_on_the_whole_path():
    # addition-based seeding made (repeat 1, tile 0) equal (repeat 0, tile 1): hashing must not
    a = derive_seed(0, "repeat", 1, "tile", 0)
    b = derive_seed(0, "repeat", 0, "tile", 1)
    assert a != b
    assert derive_seed(0, "tile", 3) != derive_seed(0, "layer", 3)
    assert derive_seed(7, "x") == derive_seed(7, "x")  # deterministic
    assert 0 <= a < 2**63


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=2, max_size=30, unique=True))
def test_derived_seeds_are_distinct_over_grids(pairs):
    seeds = {derive_seed(1, "repeat", r, "tile", t) for r, t in pairs}
    assert len(seeds) == len(pairs)


def test_generators_from_derived_seeds_are_independent_streams():
    import torch
    x = torch.randn(20000, generator=make_generator(0, "repeat", 1, "tile", 0), dtype=torch.float64)
    y = torch.randn(20000, generator=make_generator(0, "repeat", 0, "tile", 1), dtype=torch.float64)
    r = float(torch.corrcoef(torch.stack([x, y]))[0, 1])
    assert abs(r) < 4 / math.sqrt(20000)  # uncorrelated within 4 sigma
    z = torch.randn(20000, generator=make_generator(0, "repeat", 1, "tile", 0), dtype=torch.float64)
    assert torch.equal(x, z)


@pytest.mark.parametrize("value", ["0.01", True, None, float("nan")])
def test_unbounded_real_errors_name_the_parameter_without_a_vacuous_range(value):
    """A wrongly typed or non-finite unbounded real is "a real number", not "a real number in
    (-inf, inf)"; bounded ones keep their range in the message."""
    with pytest.raises(ValueError, match=r"^offset must be (finite \()?a real number") as err:
        check_real("offset", value)
    assert "inf, inf" not in str(err.value)
    with pytest.raises(ValueError, match=r"read_noise must be (finite \()?a real number in \[0, 1\]"):
        check_real("read_noise", value, low=0.0, high=1.0)
