"""The official Python client against Waggle's API server."""

import json

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


def pod(name, labels=None, image="nginx:1.27"):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image=image)]),
    )


def test_version_and_discovery(api_client):
    version = client.VersionApi(api_client).get_code()
    assert version.major == "1" and version.minor == "32"
    groups = client.ApisApi(api_client).get_api_versions()
    assert "apps" in [g.name for g in groups.groups]


def test_configmap_crud(core, namespace):
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg"), data={"a": "1"})
    created = core.create_namespaced_config_map(namespace, cm)
    assert created.metadata.uid and created.metadata.resource_version
    got = core.read_namespaced_config_map("cfg", namespace)
    assert got.data == {"a": "1"}
    got.data["b"] = "2"
    replaced = core.replace_namespaced_config_map("cfg", namespace, got)
    assert replaced.data == {"a": "1", "b": "2"}
    patched = core.patch_namespaced_config_map("cfg", namespace, {"metadata": {"labels": {"x": "y"}}})
    assert patched.metadata.labels == {"x": "y"}
    status = core.delete_namespaced_config_map("cfg", namespace)
    assert status.status == "Success"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("cfg", namespace)
    assert err.value.status == 404
    assert json.loads(err.value.body)["message"] == 'configmaps "cfg" not found'


def test_conflict_on_stale_resource_version(core, namespace):
    created = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c")))
    created.data = {"k": "1"}
    core.replace_namespaced_config_map("c", namespace, created)
    created.data = {"k": "2"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("c", namespace, created)
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "Conflict"


def test_validation_error_has_causes(core, namespace):
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(namespace, pod("bad", image=""))
    assert err.value.status == 422
    body = json.loads(err.value.body)
    assert body["message"] == 'Pod "bad" is invalid: spec.containers[0].image: Required value'
    assert body["details"]["causes"][0]["field"] == "spec.containers[0].image"


def test_selectors_and_pagination(core, namespace):
    for i in range(7):
        core.create_namespaced_pod(namespace, pod(f"p{i}", {"app": "web" if i % 2 else "db"}))
    web = core.list_namespaced_pod(namespace, label_selector="app=web")
    assert [p.metadata.name for p in web.items] == ["p1", "p3", "p5"]
    named = core.list_namespaced_pod(namespace, field_selector="metadata.name=p2")
    assert [p.metadata.name for p in named.items] == ["p2"]
    names, token = [], None
    while True:
        page = core.list_namespaced_pod(namespace, limit=3, _continue=token)
        names += [p.metadata.name for p in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"p{i}" for i in range(7)]
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(namespace, field_selector="spec.nope=1")
    assert err.value.status == 400


def test_watch_from_resource_version(core, namespace):
    start = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w0")))
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w1")))
    core.patch_namespaced_config_map("w1", namespace, {"data": {"a": "b"}})
    core.delete_namespaced_config_map("w0", namespace)
    seen = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, namespace,
                          resource_version=start.metadata.resource_version, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w0")]


def test_deployment_scale_and_status(apps, namespace):
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}},
        },
    }
    created = apps.create_namespaced_deployment(namespace, body)
    assert created.spec.strategy.type == "RollingUpdate"
    scale = apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4
    assert apps.read_namespaced_deployment("web", namespace).metadata.generation == 2


def test_service_allocation(core, namespace):
    svc = client.V1Service(
        metadata=client.V1ObjectMeta(name="s"),
        spec=client.V1ServiceSpec(type="NodePort", ports=[client.V1ServicePort(port=80)]),
    )
    created = core.create_namespaced_service(namespace, svc)
    assert created.spec.cluster_ip.startswith("10.")
    assert 30000 <= created.spec.ports[0].node_port <= 32767
    clash = client.V1Service(
        metadata=client.V1ObjectMeta(name="t"),
        spec=client.V1ServiceSpec(cluster_ip=created.spec.cluster_ip, ports=[client.V1ServicePort(port=80)]),
    )
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service(namespace, clash)
    assert err.value.status == 422
    assert "provided IP is already allocated" in json.loads(err.value.body)["message"]


def test_graceful_delete_of_bound_pod(core, namespace):
    p = pod("g")
    p.spec.node_name = "n1"
    core.create_namespaced_pod(namespace, p)
    marked = core.delete_namespaced_pod("g", namespace)
    assert marked.metadata.deletion_timestamp is not None
    assert marked.metadata.deletion_grace_period_seconds == 30
    core.delete_namespaced_pod("g", namespace, grace_period_seconds=0)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("g", namespace)
    assert err.value.status == 404


def test_custom_resources(api_client, namespace):
    extensions = client.ApiextensionsV1Api(api_client)
    plural, group = "widgets", "py.example.com"
    schema = client.V1JSONSchemaProps(
        type="object",
        properties={
            "spec": client.V1JSONSchemaProps(
                type="object",
                properties={"size": client.V1JSONSchemaProps(type="integer", minimum=1)},
            )
        },
    )
    definition = client.V1CustomResourceDefinition(
        metadata=client.V1ObjectMeta(name=f"{plural}.{group}"),
        spec=client.V1CustomResourceDefinitionSpec(
            group=group,
            scope="Namespaced",
            names=client.V1CustomResourceDefinitionNames(plural=plural, kind="Widget"),
            versions=[
                client.V1CustomResourceDefinitionVersion(
                    name="v1", served=True, storage=True,
                    schema=client.V1CustomResourceValidation(open_apiv3_schema=schema),
                )
            ],
        ),
    )
    created = extensions.create_custom_resource_definition(definition)
    assert [c.type for c in created.status.conditions] == ["NamesAccepted", "Established"]
    custom = client.CustomObjectsApi(api_client)
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 2}}
    custom.create_namespaced_custom_object(group, "v1", namespace, plural, widget)
    got = custom.get_namespaced_custom_object(group, "v1", namespace, plural, "w1")
    assert got["spec"] == {"size": 2}
    patched = custom.patch_namespaced_custom_object(group, "v1", namespace, plural, "w1", {"spec": {"size": 3}})
    assert patched["spec"]["size"] == 3
    listed = custom.list_namespaced_custom_object(group, "v1", namespace, plural)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["w1"]
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(group, "v1", namespace, plural, "w1", {"spec": {"size": 0}})
    assert err.value.status == 422
    assert "spec.size in body should be greater than or equal to 1" in json.loads(err.value.body)["message"]
    custom.delete_namespaced_custom_object(group, "v1", namespace, plural, "w1")
    extensions.delete_custom_resource_definition(f"{plural}.{group}")
