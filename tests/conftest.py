import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")  # must precede any numba import

# Shared fixtures: synthetic valid timeframes and files written from them.

import pytest

from alice_dyn.io.testing import empty_timeframe, synthetic_timeframe
from alice_dyn.io.writer import write_timeframes


def make_timeframes(n: int = 5, *, seed: int = 1, with_empty: bool = True) -> list:
    """``n`` small random valid timeframes (tf_id 100, 101, ...), the last one empty if asked."""
    tfs = [
        synthetic_timeframe(
            seed + i,
            tf_id=100 + i,
            n_collisions=1 + i % 3,
            particles_per_collision=8,
            system="pbpb" if i % 2 else "pp",
            run_period="LHC24ar" if i < 2 else "LHC23zzh",
        )
        for i in range(n - 1 if with_empty else n)
    ]
    if with_empty:
        tfs.append(empty_timeframe(100 + n - 1))
    return tfs


@pytest.fixture(scope="session")
def timeframes() -> list:
    """Five valid timeframes, the last with no clusters (or anything else)."""
    return make_timeframes(5)


@pytest.fixture(scope="session")
def alice_file(tmp_path_factory, timeframes) -> str:
    """The fixture timeframes in the alice_dyn layout, two timeframes per basket."""
    path = str(tmp_path_factory.mktemp("io") / "tfs.root")
    write_timeframes(path, timeframes, flush_timeframes=2)
    return path


@pytest.fixture(scope="session")
def o2_file(tmp_path_factory, timeframes) -> str:
    """The fixture timeframes in O2's tpcrec/TPCClusterNative layout."""
    path = str(tmp_path_factory.mktemp("io") / "tpc-native-clusters.root")
    write_timeframes(path, timeframes, layout="o2", flush_timeframes=2)
    return path


@pytest.fixture(scope="session")
def make_tfs():
    """Factory ``make_tfs(n, seed=1, with_empty=True)`` of valid timeframes."""
    return make_timeframes
