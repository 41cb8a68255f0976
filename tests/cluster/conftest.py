"""A real two-node Ray cluster on this machine (ray_processes.py), each node with one CPU, and
this test process joined to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ray_processes import RayCluster
from ray_processes import ray_cluster as start_cluster

from ldl_video.cluster import Cluster, connect


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    with start_cluster(nodes=2, cpus_per_node=1) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def cluster(ray_cluster: RayCluster) -> Iterator[Cluster]:
    """This test process joined to the two-node cluster."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in ray_cluster.env.items():
            env.setenv(name, value)
        joined = connect(ray_cluster.address)
        try:
            yield joined
        finally:
            joined.close()
