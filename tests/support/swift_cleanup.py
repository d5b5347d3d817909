"""Removing a test's Swift container, with the segments container its large objects used."""

import openstack.exceptions

from orchestrator.artifacts.swift import SEGMENT_SUFFIX


def remove_container(cloud, container: str) -> None:
    """Empty and delete ``container`` and its segments container; absent ones are skipped."""
    for name in (container, container + SEGMENT_SUFFIX):
        try:
            for obj in list(cloud.object_store.objects(name)):
                cloud.object_store.delete_object(obj, container=name, ignore_missing=True)
        except openstack.exceptions.NotFoundException:
            continue
        cloud.object_store.delete_container(name, ignore_missing=True)
