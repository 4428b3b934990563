"""Segmentation jobs on the Dask cluster: the dispatcher, its leadership among replicas, the cluster."""

from server.jobs.cluster import ClusterHandle, ClusterStatus
from server.jobs.dispatcher import Dispatcher
from server.jobs.leadership import Leadership, open_leadership

__all__ = ["ClusterHandle", "ClusterStatus", "Dispatcher", "Leadership", "open_leadership"]
