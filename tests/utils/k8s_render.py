"""Render a kustomization the way ``kubectl kustomize`` does, for the part of kustomize that
deploy/k8s uses, so the manifests are checked where kubectl is not installed.

Handled: ``resources`` (files and kustomization folders), ``namespace``, ``labels`` (metadata
only), ``images``, ``replicas`` and JSON 6902 ``patches`` with a kind/name target. Anything else
raises, so a kustomization that grows past this subset fails loudly instead of rendering wrong;
tests/test_deploy.py compares the result with kubectl's where kubectl is present.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas", "patches"}
# Kinds without a namespace among those kustomize knows (the ones a deploy folder could hold).
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class UnsupportedKustomization(ValueError):
    pass


def render(folder: Path) -> list[dict[str, Any]]:
    """Every object of the kustomization in ``folder``, with its transformations applied."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise UnsupportedKustomization(f"{folder}: fields this renderer does not implement: {sorted(unknown)}")
    objects: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = folder / entry
        if path.is_dir():
            objects.extend(render(path))
        else:
            objects.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    objects = copy.deepcopy(objects)
    for patch in spec.get("patches", []):
        _patch(objects, patch, folder)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = spec["namespace"]
    for label in spec.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise UnsupportedKustomization(f"{folder}: labels with includeSelectors/includeTemplates")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label["pairs"])
    for image in spec.get("images", []):
        _set_image(objects, image)
    for replicas in spec.get("replicas", []):
        matches = [o for o in objects if o["metadata"]["name"] == replicas["name"] and "replicas" in o.get("spec", {})]
        if not matches:
            raise UnsupportedKustomization(f"{folder}: replicas for unknown {replicas['name']}")
        for obj in matches:
            obj["spec"]["replicas"] = replicas["count"]
    return objects


def _patch(objects: list[dict[str, Any]], patch: dict[str, Any], folder: Path) -> None:
    target = patch.get("target", {})
    if set(target) - {"kind", "name"} or set(patch) - {"target", "patch"}:
        raise UnsupportedKustomization(f"{folder}: only inline JSON 6902 patches with a kind/name target")
    ops = yaml.safe_load(patch["patch"])
    if not isinstance(ops, list):
        raise UnsupportedKustomization(f"{folder}: strategic-merge patches are not implemented")
    matches = [o for o in objects if _targets(o, target)]
    if not matches:
        raise UnsupportedKustomization(f"{folder}: patch target {target} matches nothing")
    for obj in matches:
        for op in ops:
            _apply(obj, op)


def _targets(obj: dict[str, Any], target: dict[str, str]) -> bool:
    return obj["kind"] == target.get("kind", obj["kind"]) and obj["metadata"]["name"] == target.get(
        "name", obj["metadata"]["name"]
    )


def _apply(obj: dict[str, Any], op: dict[str, Any]) -> None:
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) and last != "-" else last
    if op["op"] == "add":
        if isinstance(node, list):
            node.insert(len(node) if key == "-" else key, op["value"])
        else:
            node[key] = op["value"]
    elif op["op"] == "replace":
        node[key]  # replace requires the path to exist (RFC 6902): a KeyError otherwise
        node[key] = op["value"]
    elif op["op"] == "remove":
        del node[key]
    else:
        raise UnsupportedKustomization(f"JSON patch op {op['op']!r} is not implemented")


def _set_image(objects: list[dict[str, Any]], image: dict[str, str]) -> None:
    for obj in objects:
        if obj["kind"] not in POD_TEMPLATE_KINDS:
            continue
        pod = obj["spec"]["template"]["spec"]
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
