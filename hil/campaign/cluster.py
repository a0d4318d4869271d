"""The Dask client every distributed job of linetwin uses: campaigns, parameter sweeps and surrogate training data.

``dask_client(scheduler, workers)``: with ``scheduler`` (``tcp://HOST:PORT``) a client of that existing cluster;
without, an embedded :class:`distributed.LocalCluster` of ``workers`` processes with one thread each (the jobs are
CPU-bound: casadi, IPOPT and the ODE integrators hold the GIL), closed on exit. Workers need the same code and
files as the client (one checkout, or a shared filesystem / image). Dask is imported only when a client is made.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2) -> Iterator[Any]:
    """A :class:`distributed.Client` of the cluster at ``scheduler``, or of an embedded LocalCluster of
    ``workers`` single-threaded processes (see the module docstring)."""
    from distributed import Client, LocalCluster

    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=":0", silence_logs=40)
    try:
        with Client(scheduler or cluster) as client:
            yield client
    finally:
        if cluster is not None:
            cluster.close()
