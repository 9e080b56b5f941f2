"""A small renderer of the kustomizations in k8s/, for tests where no
kustomize binary is installed. It supports exactly what those files use, the
way kustomize does, and refuses anything else rather than guess:

- `resources`: YAML files (several documents each) and directories holding
  a kustomization, built first with their own transformations;
- `components`: directories holding a `kind: Component` with resources
  (files) and patches: its resources are added, then its patches apply to
  everything gathered so far;
- `patches` with `path`:
  - a mapping is a strategic-merge patch, applied to the resource of the same
    kind and name, or to every resource `target` selects (kind and name);
    maps merge, `null` deletes a key; lists of built-in kinds merge by their
    Kubernetes merge key where `MERGE_KEYS` names one (containers and env by
    name, volumeMounts by mountPath...) and are replaced otherwise; custom
    resources take a JSON merge patch (RFC 7386: lists replaced). `$patch`
    directives are not supported;
  - a list is a JSON patch (RFC 6902: add, replace, remove), applied to every
    resource `target` selects;
- `namespace`: set on every namespaced resource (a Namespace object is left
  as it is: ours has the namespace's own name);
- `replicas`: `spec.replicas` of the Deployment of that name;
- `images`: `newName`, `newTag` or `digest` of every container and init
  container whose image has that name.

Transformations run in kustomize's order: patches, namespace, replicas,
images. Generators (configMapGenerator...), labels, name prefixes and
replacements are not supported.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KUSTOMIZATION_FILE = "kustomization.yaml"
SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "patches",
    "namespace",
    "replicas",
    "images",
}
# Kinds without a namespace (only those that could appear here).
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}
# API groups whose objects take strategic-merge patches; any other is a
# custom resource, patched by JSON merge patch.
BUILT_IN_GROUPS = {
    "",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
}
# A list field's merge key in a strategic-merge patch, as the Kubernetes API
# declares it (patchMergeKey) for the fields our patches may touch.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}
SCALABLE_KINDS = {"Deployment", "StatefulSet", "ReplicaSet"}


class UnsupportedKustomization(ValueError):
    """The kustomization uses something this renderer does not do."""


def build(directory: Path) -> list[Resource]:
    """The resources `kustomize build directory` would print, in order."""
    return _build(Path(directory), expected_kind="Kustomization")


def _build(directory: Path, expected_kind: str) -> list[Resource]:
    kustomization = _load_kustomization(directory, expected_kind)
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            resources.extend(_build(path, "Kustomization"))
        else:
            resources.extend(load_documents(path))
    for entry in kustomization.get("components", []):
        component_directory = directory / entry
        component = _load_kustomization(component_directory, "Component")
        if set(component) - {"apiVersion", "kind", "resources", "patches"}:
            raise UnsupportedKustomization(f"{component_directory}: resources and patches only")
        for resource_entry in component.get("resources", []):
            resources.extend(load_documents(component_directory / resource_entry))
        _transform(resources, component_directory, component, fields={"patches"})
    _transform(resources, directory, kustomization)
    return resources


def _load_kustomization(directory: Path, expected_kind: str) -> dict[str, Any]:
    kustomization = yaml.safe_load((directory / KUSTOMIZATION_FILE).read_text())
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise UnsupportedKustomization(f"{directory}: {sorted(unsupported)}")
    if kustomization.get("kind", "Kustomization") != expected_kind:
        raise UnsupportedKustomization(f"{directory}: expected a {expected_kind}")
    return kustomization


def load_documents(path: Path) -> list[Resource]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def _transform(
    resources: list[Resource],
    directory: Path,
    kustomization: dict[str, Any],
    fields: set[str] = SUPPORTED_FIELDS,
) -> None:
    if "patches" in fields:
        for entry in kustomization.get("patches", []):
            _apply_patch(resources, directory, entry)
    if "namespace" in fields and "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    if "replicas" in fields:
        for entry in kustomization.get("replicas", []):
            targets = [
                resource
                for resource in resources
                if resource["kind"] in SCALABLE_KINDS
                and resource["metadata"]["name"] == entry["name"]
            ]
            if not targets:
                raise UnsupportedKustomization(f"replicas: nothing named {entry['name']}")
            for resource in targets:
                resource["spec"]["replicas"] = entry["count"]
    if "images" in fields:
        for entry in kustomization.get("images", []):
            for resource in resources:
                for container in _containers(resource):
                    container["image"] = new_image(container["image"], entry)


def _apply_patch(resources: list[Resource], directory: Path, entry: dict[str, Any]) -> None:
    if set(entry) - {"path", "target"}:
        raise UnsupportedKustomization(f"patch fields {sorted(entry)}: only path and target")
    documents = load_documents(directory / entry["path"])
    if len(documents) != 1:
        raise UnsupportedKustomization(f"{entry['path']}: one patch per file")
    patch = documents[0]
    target = entry.get("target")
    if target is not None and set(target) - {"kind", "name"}:
        raise UnsupportedKustomization(f"target fields {sorted(target)}: only kind and name")
    if isinstance(patch, list):
        if target is None:
            raise UnsupportedKustomization(f"{entry['path']}: a JSON patch needs a target")
        selector = target
    else:
        selector = target or {"kind": patch["kind"], "name": patch["metadata"]["name"]}
    matched = [resource for resource in resources if _selected(resource, selector)]
    if not matched:
        raise UnsupportedKustomization(f"{entry['path']}: no resource matches {selector}")
    for resource in matched:
        if isinstance(patch, list):
            apply_json_patch(resource, patch)
        else:
            merged = merge_patch(resource, patch, strategic=_is_built_in(resource))
            # A patch selected by target keeps the resource's own identity.
            merged["metadata"]["name"] = resource["metadata"]["name"]
            resource.clear()
            resource.update(merged)


def _selected(resource: Resource, selector: dict[str, str]) -> bool:
    return all(
        (resource["kind"] if key == "kind" else resource["metadata"]["name"]) == value
        for key, value in selector.items()
    )


def _is_built_in(resource: Resource) -> bool:
    api_version = resource["apiVersion"]
    group = api_version.split("/")[0] if "/" in api_version else ""
    return group in BUILT_IN_GROUPS


def merge_patch(original: Any, patch: Any, strategic: bool, field: str | None = None) -> Any:
    """`patch` merged into a copy of `original` (see the module docstring)."""
    if isinstance(patch, dict):
        if "$patch" in patch:
            raise UnsupportedKustomization("$patch directives are not supported")
        result = copy.deepcopy(original) if isinstance(original, dict) else {}
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = merge_patch(result.get(key), value, strategic, key)
        return result
    if isinstance(patch, list) and strategic and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        result = copy.deepcopy(original) if isinstance(original, list) else []
        for item in patch:
            for index, existing in enumerate(result):
                if existing.get(key) == item[key]:
                    result[index] = merge_patch(existing, item, strategic)
                    break
            else:
                result.append(copy.deepcopy(item))
        return result
    return copy.deepcopy(patch)


def apply_json_patch(resource: Resource, operations: list[dict[str, Any]]) -> None:
    """RFC 6902's add, replace and remove, in place."""
    for operation in operations:
        op = operation["op"]
        if op not in {"add", "replace", "remove"}:
            raise UnsupportedKustomization(f"JSON patch op {op!r}")
        *parents, last = _pointer(operation["path"])
        parent: Any = resource
        for token in parents:
            parent = parent[int(token)] if isinstance(parent, list) else parent[token]
        value = copy.deepcopy(operation.get("value"))
        if isinstance(parent, list):
            if op == "add":
                parent.insert(len(parent) if last == "-" else int(last), value)
            elif op == "replace":
                parent[int(last)] = value
            else:
                del parent[int(last)]
        else:
            if op != "add" and last not in parent:
                raise KeyError(f"{operation['path']}: nothing to {op}")
            if op == "remove":
                del parent[last]
            else:
                parent[last] = value


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise UnsupportedKustomization(f"JSON pointer {path!r}")
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _containers(node: Any) -> list[dict[str, Any]]:
    """Every container and init container anywhere in a resource."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found.extend(value)
            else:
                found.extend(_containers(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_containers(item))
    return found


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of an image reference."""
    name, _, digest = image.partition("@")
    tag = None
    last_slash = name.rfind("/")
    if ":" in name[last_slash + 1 :]:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest or None


def new_image(image: str, entry: dict[str, str]) -> str:
    if set(entry) - {"name", "newName", "newTag", "digest"}:
        raise UnsupportedKustomization(f"images fields {sorted(entry)}")
    name, tag, digest = split_image(image)
    if name != entry["name"]:
        return image
    name = entry.get("newName", name)
    if "digest" in entry:
        return f"{name}@{entry['digest']}"
    tag = entry.get("newTag", tag)
    reference = f"{name}:{tag}" if tag else name
    return f"{reference}@{digest}" if digest else reference
