"""Fixtures: an API client for the server the Rust driver (tests/python.rs) started."""

import os
import uuid

import pytest
from kubernetes import client, config


@pytest.fixture(scope="session")
def api_client():
    path = os.environ.get("WAGGLE_KUBECONFIG")
    if not path:
        pytest.fail("WAGGLE_KUBECONFIG is not set: run these through `cargo test -p waggle-apiserver --test python`")
    return config.new_client_from_config(config_file=path)


@pytest.fixture()
def core(api_client):
    return client.CoreV1Api(api_client)


@pytest.fixture()
def apps(api_client):
    return client.AppsV1Api(api_client)


@pytest.fixture()
def namespace(core):
    name = "py-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name
