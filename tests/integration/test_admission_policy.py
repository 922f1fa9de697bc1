"""deploy/admission-policy.yaml against the real apiserver: `kubectl apply -k deploy/` on a private control plane,
then requests as dra-kwok's ServiceAccount (impersonated by the admin, so its RBAC and its username apply).

- Refused, each with the policy's message: an unlabelled slice; a labelled slice of a driver not in the params
  (an allNodes slice of gpu.nvidia.com among them); an update or delete of a slice that is not labelled as ours, or
  of ours for a driver not listed; an update that drops the label; a deletecollection that reaches a foreign slice
  (the apiserver evaluates it per object, measured below).
- Admitted: the driver's normal work, create / update / delete of labelled slices of a listed driver.
- Other users are not affected; adding a driver to the params admits it; without the params ConfigMap the driver
  list is not enforced but the ownership rules are, and other users are still unaffected.
(tests/integration/test_deploy.py runs the real driver as the ServiceAccount with the policy in place.)
"""

from __future__ import annotations

import copy
import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dra_kwok.runtime.rest import Rest
from dra_kwok.testing.controlplane import ControlPlane
from tests.integration.deploy_support import (
    ALLOWED_DRIVERS,
    DRIVERS_POLICY,
    NAMESPACE,
    OWN_SLICES_POLICY,
    SA_USER,
    SLICES,
    impersonate_service_account,
    kubectl,
    refusal,
    resource_slice,
    wait_for_admission_policy,
)
from tests.support.helpers import wait_for

pytestmark = pytest.mark.integration

LISTED = "gpu.dra-kwok.x-k8s.io"  # deploy/admission-policy.yaml's data.drivers
DENIED = "ValidatingAdmissionPolicy '{0}' with binding '{0}' denied request: "
LABEL_RULE = (DENIED.format(OWN_SLICES_POLICY)
              + "dra-kwok may only create ResourceSlices labelled app.kubernetes.io/managed-by=dra-kwok")
OWN_RULE = (DENIED.format(OWN_SLICES_POLICY)
            + "dra-kwok may only update or delete ResourceSlices that are labelled "
            "app.kubernetes.io/managed-by=dra-kwok")
DRIVER_RULE = (DENIED.format(DRIVERS_POLICY) + "dra-kwok may only write ResourceSlices of the drivers listed in "
               f"data.drivers of the ConfigMap {NAMESPACE}/{ALLOWED_DRIVERS} (now: {LISTED})")


@pytest.fixture(scope="module")
def cluster():
    # the beta versions of resource.k8s.io (off by default in 1.34) too, to prove the policy covers them
    cp = ControlPlane(extra_apiserver_args=[
        "--runtime-config=resource.k8s.io/v1beta1=true,resource.k8s.io/v1beta2=true"])
    cp.start()
    try:
        kubectl("apply", "-k", "deploy/", kubeconfig=cp.kubeconfig)
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="module")
def admin(cluster):
    api = cluster.api_client()
    yield Rest(api)
    api.close()


@pytest.fixture(scope="module")
def sa(cluster):
    """Rest as system:serviceaccount:karpenter:dra-kwok, once the policy is enforced."""
    api = impersonate_service_account(cluster.api_client())
    rest = Rest(api)
    wait_for_admission_policy(rest)
    yield rest
    api.close()


@pytest.fixture
def name() -> str:
    return f"adm-{uuid.uuid4().hex[:6]}"


def _get(rest: Rest, name: str) -> dict | None:
    try:
        return rest.get(f"{SLICES}/{name}")
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def _delete_all(admin: Rest, *names: str) -> None:
    for n in names:
        if _get(admin, n) is not None:
            admin.delete(f"{SLICES}/{n}")


def _refused(call, *expected: str) -> str:
    status, message = refusal(call)
    assert status == 403, (status, message)
    assert 'resourceslices.resource.k8s.io "' in message, message
    assert "is forbidden: ValidatingAdmissionPolicy '" in message, message
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    return message


def test_normal_work_is_admitted(sa, admin, name):
    """What the driver does: create (node-local and cluster-wide), update in place and with a new generation, delete
    with preconditions; all as the ServiceAccount, for a listed driver, labelled."""
    local = f"{name}-local"
    try:
        created = sa.post(SLICES, resource_slice(name, LISTED))
        sa.post(SLICES, resource_slice(local, LISTED, nodeName="some-kwok-node"))
        updated = copy.deepcopy(created)
        updated["spec"]["devices"].append({"name": "dev-1"})
        updated["spec"]["pool"]["generation"] = 1
        updated["metadata"]["labels"]["dra-kwok.x-k8s.io/mapping"] = "gpu-t4"
        updated = sa.put(f"{SLICES}/{name}", updated)
        assert [d["name"] for d in updated["spec"]["devices"]] == ["dev-0", "dev-1"]
        sa.delete(f"{SLICES}/{name}", {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {
            "uid": updated["metadata"]["uid"], "resourceVersion": updated["metadata"]["resourceVersion"]}})
        sa.delete(f"{SLICES}/{local}")
        assert _get(admin, name) is None and _get(admin, local) is None
    finally:
        _delete_all(admin, name, local)


def test_policy_type_checks_clean(cluster, sa, admin):
    """kube-controller-manager type-checks the policy's CEL against the ResourceSlice and ConfigMap schemas and
    reports any warning (a misspelt field, a type mismatch) in the policy's status."""
    cluster.start_controller_manager()
    for policy in (OWN_SLICES_POLICY, DRIVERS_POLICY):
        path = f"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/{policy}"
        status = wait_for(lambda: admin.get(path).get("status", {}).get("typeChecking") is not None
                          and admin.get(path)["status"], timeout=30, message=f"{policy} type-checked")
        assert status["typeChecking"].get("expressionWarnings") in (None, []), status


def test_create_unlabelled_is_refused(sa, admin, name):
    _refused(lambda: sa.post(SLICES, resource_slice(name, LISTED, labelled=False)), LABEL_RULE, f"'{name}'")
    other_manager = resource_slice(name, LISTED, labelled=False)
    other_manager["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "someone-else"}
    _refused(lambda: sa.post(SLICES, other_manager), LABEL_RULE)
    assert _get(admin, name) is None


def test_every_served_version_is_covered(sa, admin, name):
    """The policy matches resource.k8s.io/v1 only; a request through another served version (v1beta1/v1beta2,
    when a cluster enables them) is converted to v1 and evaluated too (matchPolicy: Equivalent)."""
    versions = [v["version"] for v in admin.get("/apis/resource.k8s.io")["versions"]]
    assert {"v1", "v1beta1", "v1beta2"} <= set(versions), versions
    for version in versions:
        path = f"/apis/resource.k8s.io/{version}/resourceslices"
        body = resource_slice(name, LISTED, labelled=False)
        body["apiVersion"] = f"resource.k8s.io/{version}"
        if version == "v1beta1":  # devices are {name, basic: {...}} there
            body["spec"]["devices"] = [{"name": "dev-0", "basic": {}}]
        _refused(lambda: sa.post(path, body, query={"dryRun": "All"}), LABEL_RULE)


@pytest.mark.parametrize("driver, spec", [
    ("fpga.example.com", {"nodeName": "some-kwok-node"}),
    ("gpu.nvidia.com", {"allNodes": True}),  # a real driver's name, cluster-wide: the worst a stolen token could do
])
def test_create_for_an_unlisted_driver_is_refused(sa, admin, name, driver, spec):
    message = _refused(lambda: sa.post(SLICES, resource_slice(name, driver, **spec)), DRIVER_RULE,
                       f"of ResourceSlice '{name}' is for driver '{driver}'", "add it to data.drivers")
    assert "CREATE" in message
    assert _get(admin, name) is None


def test_update_of_a_foreign_slice_is_refused(sa, admin, name):
    foreign = admin.post(SLICES, resource_slice(name, LISTED, labelled=False))  # someone else's, same driver
    try:
        takeover = copy.deepcopy(foreign)
        takeover["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "dra-kwok"}
        takeover["spec"]["devices"] = []
        _refused(lambda: sa.put(f"{SLICES}/{name}", takeover), OWN_RULE, f"'{name}'", "UPDATE")
        assert _get(admin, name)["metadata"]["resourceVersion"] == foreign["metadata"]["resourceVersion"]
    finally:
        _delete_all(admin, name)


def test_update_must_keep_the_label(sa, admin, name):
    own = sa.post(SLICES, resource_slice(name, LISTED))
    try:
        unlabelled = copy.deepcopy(own)
        unlabelled["metadata"]["labels"] = {}
        _refused(lambda: sa.put(f"{SLICES}/{name}", unlabelled), "an update must keep that label", "UPDATE")
        assert _get(admin, name)["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "dra-kwok"}
    finally:
        _delete_all(admin, name)


def test_delete_of_a_foreign_slice_is_refused(sa, admin, name):
    unlabelled = f"{name}-unlabelled"
    admin.post(SLICES, resource_slice(unlabelled, LISTED, labelled=False))
    nvidia = resource_slice(name, "gpu.nvidia.com", labelled=False)
    nvidia["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "nvidia-dra-driver"}
    admin.post(SLICES, nvidia)
    try:
        _refused(lambda: sa.delete(f"{SLICES}/{unlabelled}"), OWN_RULE, f"'{unlabelled}'", "DELETE")
        _refused(lambda: sa.delete(f"{SLICES}/{name}"), OWN_RULE, f"'{name}'")
        assert _get(admin, unlabelled) is not None and _get(admin, name) is not None
    finally:
        _delete_all(admin, name, unlabelled)


def test_own_slice_of_a_driver_no_longer_listed_is_kept(sa, admin, name):
    """Labelled by dra-kwok but of a driver not (or no longer) in the params: update and delete are refused too,
    which is why README says to remove a driver from the params only after dra-kwok deleted its slices."""
    admin.post(SLICES, resource_slice(name, "old.example.com"))
    try:
        own = _get(admin, name)
        own["spec"]["devices"] = []
        _refused(lambda: sa.put(f"{SLICES}/{name}", own), DRIVER_RULE, "'old.example.com'", "UPDATE")
        _refused(lambda: sa.delete(f"{SLICES}/{name}"), DRIVER_RULE, "'old.example.com'", "DELETE")
    finally:
        _delete_all(admin, name)


def test_other_users_are_not_affected(admin, name):
    """The admin (and any user but the ServiceAccount) writes any slice: the policy's matchConditions skip it."""
    nvidia = resource_slice(name, "gpu.nvidia.com", labelled=False)
    created = admin.post(SLICES, nvidia)
    created["spec"]["devices"] = []
    admin.put(f"{SLICES}/{name}", created)
    admin.delete(f"{SLICES}/{name}")
    assert _get(admin, name) is None


def test_deletecollection_is_evaluated_per_object(cluster, sa, admin, name):
    """The shipped RBAC does not grant deletecollection; if someone grants it, the policy still holds, because the
    apiserver runs validating admission for each object a deletecollection deletes (with that object as oldObject,
    so the policy's message names it)."""
    grant = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": f"{name}-deletecollection"},
             "rules": [{"apiGroups": ["resource.k8s.io"], "resources": ["resourceslices"],
                        "verbs": ["deletecollection"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": f"{name}-deletecollection"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": grant["metadata"]["name"]},
               "subjects": [{"kind": "ServiceAccount", "name": SA_USER.rsplit(":", 1)[1], "namespace": NAMESPACE}]}
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    ours, foreign = f"{name}-ours", f"{name}-foreign"
    admin.post(f"{rbac}/clusterroles", grant)
    admin.post(f"{rbac}/clusterrolebindings", binding)
    try:
        # without the grant it would be an RBAC 403 without the policy's message; wait for the grant
        wait_for(lambda: "forbidden: User" not in refusal(lambda: sa.delete(SLICES, query={
            "labelSelector": "no-such-label=x"}))[1], timeout=10, message="deletecollection granted")
        sa.post(SLICES, resource_slice(ours, LISTED))
        admin.post(SLICES, resource_slice(foreign, LISTED, labelled=False))
        # no selector: the foreign slice is refused (by name: per object), and it survives
        _refused(lambda: sa.delete(SLICES), OWN_RULE, f"'{foreign}'", "DELETE")
        assert _get(admin, foreign) is not None
        # with dra-kwok's label selector, only its own slices: admitted (the refused call above may or may not
        # have deleted ours before it met the foreign slice: the apiserver deletes the items concurrently)
        if _get(admin, ours) is None:
            sa.post(SLICES, resource_slice(ours, LISTED))
        sa.delete(SLICES, query={"labelSelector": "app.kubernetes.io/managed-by=dra-kwok"})
        assert _get(admin, ours) is None and _get(admin, foreign) is not None
    finally:
        _delete_all(admin, ours, foreign)
        admin.delete(f"{rbac}/clusterrolebindings/{binding['metadata']['name']}")
        admin.delete(f"{rbac}/clusterroles/{grant['metadata']['name']}")


def test_params_list_the_drivers(cluster, sa, admin, name):
    """The fix the messages give works: a driver added to data.drivers (comma-separated, spaces ignored) is
    admitted. Without the params ConfigMap the driver list is not enforced (parameterNotFoundAction: Allow, because
    the apiserver resolves params before matchConditions: Deny would refuse every user's writes), the ownership
    rules still are, and other users are unaffected. Restored afterwards."""
    core = client.CoreV1Api(admin.api)
    original = core.read_namespaced_config_map(ALLOWED_DRIVERS, NAMESPACE).data
    extra = "fpga.example.com"
    try:
        core.patch_namespaced_config_map(ALLOWED_DRIVERS, NAMESPACE,
                                         {"data": {"drivers": f"{LISTED}, {extra}\n"}})
        wait_for(lambda: refusal(lambda: sa.post(SLICES, resource_slice(name, extra), query={"dryRun": "All"}))[0]
                 == 200, timeout=30, interval=0.2, message=f"{extra} admitted once listed")
        message = _refused(lambda: sa.post(SLICES, resource_slice(name, "gpu.nvidia.com"), query={"dryRun": "All"}))
        assert f"(now: {LISTED}, {extra})" in message, message

        core.delete_namespaced_config_map(ALLOWED_DRIVERS, NAMESPACE)
        wait_for(lambda: refusal(lambda: sa.post(SLICES, resource_slice(name, "gpu.nvidia.com"),
                                                 query={"dryRun": "All"}))[0] == 200,
                 timeout=30, interval=0.2, message="the driver list lifted without its params")
        _refused(lambda: sa.post(SLICES, resource_slice(name, "gpu.nvidia.com", labelled=False),
                                 query={"dryRun": "All"}), LABEL_RULE)
        assert refusal(lambda: admin.post(SLICES, resource_slice(name, "gpu.nvidia.com", labelled=False),
                                          query={"dryRun": "All"})) == (200, "")
    finally:
        kubectl("apply", "-k", "deploy/", kubeconfig=cluster.kubeconfig)
        wait_for_admission_policy(sa)
    assert core.read_namespaced_config_map(ALLOWED_DRIVERS, NAMESPACE).data == original


def test_why_a_missing_params_configmap_is_allowed(sa, admin, name):
    """The measurement behind dra-kwok-drivers' parameterNotFoundAction: Allow. The apiserver resolves a binding's
    params before it evaluates the policy's matchConditions, so a binding with Deny whose ConfigMap is missing
    refuses every user's ResourceSlice writes (422), the admin's included, not just the ServiceAccount's."""
    bindings = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
    deny = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": f"{name}-deny"},
            "spec": {"policyName": DRIVERS_POLICY, "validationActions": ["Deny"],
                     "paramRef": {"name": f"{name}-missing", "namespace": NAMESPACE,
                                  "parameterNotFoundAction": "Deny"}}}
    admin.post(bindings, deny)
    try:
        status, message = wait_for(lambda: (lambda r: r if r[0] != 200 else None)(refusal(lambda: admin.post(
            SLICES, resource_slice(name, "gpu.nvidia.com", labelled=False), query={"dryRun": "All"}))),
            timeout=30, interval=0.2, message="the admin refused by a Deny binding without params")
        assert status == 422 and "no params found for policy binding with `Deny` parameterNotFoundAction" in message
    finally:
        admin.delete(f"{bindings}/{name}-deny")
    wait_for(lambda: refusal(lambda: admin.post(SLICES, resource_slice(name, "gpu.nvidia.com", labelled=False),
                                                query={"dryRun": "All"}))[0] == 200, timeout=30, interval=0.2,
             message="the admin admitted again")
