"""deploy/ validates offline, as written: the image copies every package and its build context
sends no key; whistle.env (and Kubernetes' own k8s/whistle-k8s.env) names only settings that
exist and holds no secret; `docker-compose config` accepts compose.yaml with the secrets
`whistle secrets init` makes, its API replicas sharing their rate limits; the Kubernetes
manifests pass the API schemas (the kubernetes-validate wheel ships them), carry probes,
resources and the Secret's keys, mount every file a setting names, and hold Kubernetes' own
values (the UI's origin, the ingress as trusted proxy, a shared Redis, Temporal's TLS)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from temporalio.envconfig import ClientConfigProfile

from api.guard import trusted_networks
from api.limits import async_storage
from whistle.config import Settings
from whistle.console.secrets import FILES

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.33.0"
# Settings that other parts of whistle read by these names (not fields of whistle.config.Settings):
# the Temporal SDK's environment configuration, asyncpg's password, the actor-attestation keys,
# the worker's and the API's metrics addresses.
OTHER_NAMES = {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_TLS", "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
               "TEMPORAL_TLS_SERVER_NAME", "PGPASSWORD", "WHISTLE_ACTOR_KEYS", "WHISTLE_METRICS_ADDRESS",
               "WHISTLE_API_METRICS_ADDRESS"}
SECRET_NAMES = {"WHISTLE_CODEC_KEYS", "WHISTLE_ACTOR_KEYS", "WHISTLE_TOKEN_SECRET", "PGPASSWORD"}


def env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("install") / "secrets"
    result = subprocess.run([sys.executable, "-m", "whistle.console.cli", "secrets", "init", str(d)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return d


def test_the_image_copies_every_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    modules = {f"{m}.py" for m in project["tool"]["setuptools"]["py-modules"]}
    copied = set()
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            copied |= set(line.split()[1:-1])
    missing = (packages | modules | {"pyproject.toml", project["project"]["readme"]}) - copied
    assert not missing, f"deploy/Dockerfile does not copy {sorted(missing)}"


def dockerfile_copies() -> list[str]:
    return [src for line in (DEPLOY / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")
            for src in line.split()[1:-1]]


def test_the_build_context_sends_no_key(tmp_path):
    """The build context is the repository root: what .dockerignore lets through, as docker-py
    (docker-compose's own builder) computes it, is what the Dockerfile copies, and no key,
    virtual environment or bytecode, in a tree shaped like a developer's checkout."""
    exe = docker_compose()
    interpreter = Path(exe).read_text(errors="replace").splitlines()[0].removeprefix("#!").split()
    if not interpreter or "python" not in interpreter[0]:
        pytest.skip(f"{exe} is not docker-compose v1 (Python): no docker-py to ask")
    for src in dockerfile_copies():
        if src.endswith((".py", ".toml", ".md")):
            (tmp_path / src).write_text("")
        else:
            (tmp_path / src / "__pycache__").mkdir(parents=True)
            (tmp_path / src / "__init__.py").write_text("")
            (tmp_path / src / "__pycache__" / "__init__.cpython-311.pyc").write_text("")
    private = [".whistle/codec.key", ".whistle/actor.key", ".whistle/demo-keys.yaml", ".whistle/postgres/PG_VERSION",
               "deploy/secrets/whistle.env", "deploy/secrets/principals.yaml", "deploy/secrets/api-keys.yaml",
               ".venv/bin/python", ".venv/lib/python3.11/site-packages/x.py", ".git/config", "tests/test_x.py",
               "bench/results/x.json", "whistle.egg-info/PKG-INFO", "docs/x.md"]
    for name in private:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("secret")
    (tmp_path / "deploy" / "Dockerfile").write_text((DEPLOY / "Dockerfile").read_text())
    (tmp_path / ".dockerignore").write_text((ROOT / ".dockerignore").read_text())
    script = ("import json, sys; from docker.utils.build import exclude_paths; "
              "patterns = [l.strip() for l in open(sys.argv[1] + '/.dockerignore') if l.strip() and not l.startswith('#')]; "
              "print(json.dumps(sorted(exclude_paths(sys.argv[1], patterns, dockerfile='deploy/Dockerfile'))))")
    done = subprocess.run([*interpreter, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    sent = set(json.loads(done.stdout))
    assert not sent & set(private), f"sent to the daemon: {sorted(sent & set(private))}"
    assert not [p for p in sent if "__pycache__" in p or p.endswith(".pyc")]
    for src in dockerfile_copies():
        assert src in sent or any(p.startswith(src + "/") for p in sent), f"the Dockerfile copies {src}, .dockerignore leaves it out"
    assert "deploy/Dockerfile" in sent


def test_whistle_env_names_real_settings_and_no_secret():
    fields = {f"WHISTLE_{name.upper()}" for name in Settings.model_fields}
    for path in (DEPLOY / "whistle.env", DEPLOY / "k8s" / "whistle-k8s.env"):
        env = env_file(path)
        unknown = {k for k in env if k not in fields | OTHER_NAMES}
        assert not unknown, f"{path} sets names nothing reads: {unknown}"
        assert not SECRET_NAMES & set(env) and "change-me" not in path.read_text()
        Settings(**{k.removeprefix("WHISTLE_").lower(): v for k, v in env.items() if k in fields})  # every value valid
    env = env_file(DEPLOY / "whistle.env")
    assert "sslmode=verify-full" in env["WHISTLE_DATABASE_URL"] and "@" in env["WHISTLE_DATABASE_URL"]
    assert ":" not in env["WHISTLE_DATABASE_URL"].split("//")[1].split("@")[0], "no password in the URL"
    assert env["TEMPORAL_ADDRESS"] == env["WHISTLE_TEMPORAL_ADDRESS"]


def test_secrets_init_makes_every_secret_once(secrets_dir, demo):
    assert sorted(p.name for p in secrets_dir.iterdir()) == sorted(FILES)
    assert all(p.stat().st_mode & 0o077 == 0 for p in secrets_dir.iterdir()) and secrets_dir.stat().st_mode & 0o077 == 0
    secret = env_file(secrets_dir / "whistle.env")
    assert set(secret) == SECRET_NAMES
    from whistle.codec import Keyring
    from whistle.principals import load_principals

    Keyring.parse(secret["WHISTLE_CODEC_KEYS"]), Keyring.parse(secret["WHISTLE_ACTOR_KEYS"])
    assert len(secret["WHISTLE_TOKEN_SECRET"]) >= 40
    assert env_file(secrets_dir / "readmodel-postgres.env")["POSTGRES_PASSWORD"] == secret["PGPASSWORD"]
    store = load_principals(secrets_dir / "principals.yaml")
    keys = yaml.safe_load((secrets_dir / "api-keys.yaml").read_text())["keys"]
    assert len(keys) == len(store.principals) > len(demo.departments) + 40
    assert all(store.authenticate(k["api_key"]).id == k["id"] for k in keys)
    assert "api_key" not in (secrets_dir / "principals.yaml").read_text()
    again = subprocess.run([sys.executable, "-m", "whistle.console.cli", "secrets", "init", str(secrets_dir)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "never overwritten" in again.stderr and "Traceback" not in again.stderr
    assert env_file(secrets_dir / "whistle.env") == secret


def docker_compose() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have docker-compose (.ci/run installs it)")
        pytest.skip("docker-compose not installed (apt-get install docker-compose); CI installs it")
    return exe


def compose_config(secrets_dir: Path | None) -> subprocess.CompletedProcess:
    exe = docker_compose()
    env = {**os.environ, "WHISTLE_SECRETS_DIR": str(secrets_dir or "/nonexistent")}
    return subprocess.run([exe, "-f", str(DEPLOY / "compose.yaml"), "config"], capture_output=True, text=True, env=env, timeout=60)


def test_compose_config_accepts_the_file(secrets_dir):
    result = compose_config(secrets_dir)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {"temporal-postgresql", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui", "readmodel",
            "migrate", "search-attributes", "schedules", "worker", "api"} <= set(services)
    for name in ("worker", "api"):
        assert services[name]["deploy"]["replicas"] == 2
        env = services[name]["environment"]
        assert SECRET_NAMES <= set(env) and env["TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["WHISTLE_PRINCIPALS_FILE"] == "/etc/whistle/secrets/principals.yaml"
    # The two API replicas count their limits together, in a Redis of this file, started first.
    api = services["api"]["environment"]
    store = urlsplit(api["WHISTLE_RATE_LIMIT_STORAGE"])
    assert store.scheme == "redis" and store.hostname in services and "redis-server" in services[store.hostname]["command"]
    assert services["api"]["depends_on"][store.hostname]["condition"] == "service_healthy"
    async_storage(api["WHISTLE_RATE_LIMIT_STORAGE"])  # the API's asyncio client is installed; the URI parses
    # The Web UI this file publishes is the origin allowed to call /codec.
    ui_port = services["temporal-ui"]["ports"][0]
    ui = f"http://{ui_port['host_ip']}:{ui_port['published']}" if isinstance(ui_port, dict) else "http://" + ui_port.rsplit(":", 1)[0]
    assert api["WHISTLE_CODEC_CORS_ORIGINS"] == ui
    # The host's reverse proxy reaches the published ports from this network: it is the trusted proxy.
    [subnet] = [c["subnet"] for c in yaml.safe_load(result.stdout)["networks"]["default"]["ipam"]["config"]]
    assert api["WHISTLE_TRUSTED_PROXIES"] == subnet and trusted_networks(subnet)
    assert services["schedules"]["command"] == ["schedules", "apply"]
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec")
    assert services["migrate"]["depends_on"]["readmodel"]["condition"] == "service_healthy"


def test_compose_config_refuses_without_the_secrets():
    result = compose_config(None)
    assert result.returncode != 0 and "env file" in result.stderr.lower()


def manifests() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if path.name != "temporal-values.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def containers(doc: dict) -> list[dict]:
    pod = doc["spec"]["template"]["spec"]
    return pod.get("initContainers", []) + pod["containers"]


def test_k8s_manifests_pass_the_schemas():
    docs = manifests()
    assert {d["kind"] for d in docs} == {"Deployment", "Service", "Ingress", "PodDisruptionBudget", "Job"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    broken = manifests()[0] | {"spec": {"replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def whistle_workloads(docs: list[dict]) -> list[dict]:
    """whistle's own Deployments and Jobs (not the Redis beside them)."""
    return [d for d in docs if d["kind"] in ("Deployment", "Job") and d["metadata"]["labels"]["app.kubernetes.io/name"] == "whistle"]


def test_k8s_workloads_are_complete(secrets_dir):
    docs = manifests()
    secret_keys = set(env_file(secrets_dir / "whistle.env")) | {"principals.yaml"}
    config = set(env_file(DEPLOY / "whistle.env")) | set(env_file(DEPLOY / "k8s" / "whistle-k8s.env"))
    assert len(whistle_workloads(docs)) == 4
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            for c in containers(doc):
                assert c["resources"]["requests"] and c["resources"]["limits"], (doc["metadata"]["name"], c["name"])
    for doc in whistle_workloads(docs):
        for c in containers(doc):
            assert c["envFrom"] == [{"configMapRef": {"name": "whistle"}}, {"configMapRef": {"name": "whistle-k8s"}}]
            for e in c.get("env", []):
                ref = e["valueFrom"]["secretKeyRef"]
                assert ref["name"] == "whistle" and ref["key"] in secret_keys and e["name"] not in config
        if doc["kind"] == "Deployment":
            [c] = doc["spec"]["template"]["spec"]["containers"]
            assert c["readinessProbe"]["httpGet"]["path"] in ("/healthz", "/readyz")
            assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
            assert doc["spec"]["replicas"] >= 2
            names = {e["name"] for e in c["env"]}
            assert {"WHISTLE_CODEC_KEYS", "WHISTLE_ACTOR_KEYS", "PGPASSWORD"} <= names  # API and worker share them
    jobs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Job"}
    assert [c["args"] for c in containers(jobs["whistle-schedules"])] == [["search-attributes"], ["schedules", "apply"]]
    assert containers(jobs["whistle-migrate"])[0]["args"] == ["migrate"]
    ingress = next(d for d in docs if d["kind"] == "Ingress")
    assert ingress["spec"]["tls"][0]["secretName"] and ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]
    pdbs = {d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for d in docs if d["kind"] == "PodDisruptionBudget"}
    assert pdbs == {"api", "worker"}


# ConfigMaps the manifests take settings from (envFrom), by the env file each is created from
# (deploy/README.md: `kubectl create configmap NAME --from-env-file=FILE`).
CONFIG_MAPS = {"whistle": DEPLOY / "whistle.env", "whistle-k8s": DEPLOY / "k8s" / "whistle-k8s.env"}
# Settings that name a file the process reads: the file must be in the container.
FILE_SETTINGS = ("WHISTLE_JURISDICTION_FILE", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_CLIENT_CERT_PATH",
                 "TEMPORAL_TLS_CLIENT_KEY_PATH")


def container_env(c: dict) -> dict[str, str]:
    """What a container's environment holds, as Kubernetes makes it: each envFrom ConfigMap in
    turn (a later one wins), then `env` (its literal values; a secret's as `<secret>`)."""
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        env |= env_file(CONFIG_MAPS[source["configMapRef"]["name"]])
    for e in c.get("env", []):
        env[e["name"]] = e.get("value", "<secret>")
    return env


def readme_made_keys() -> dict[str, set[str]]:
    """The keys of each ConfigMap or generic Secret deploy/README.md creates --from-file=KEY=…"""
    text = (DEPLOY / "README.md").read_text().replace("\\\n", " ")
    made: dict[str, set[str]] = {}
    for name, args in re.findall(r"kubectl create (?:configmap|secret generic) (\S+)(.*)", text):
        made.setdefault(name, set()).update(re.findall(r"--from-file=([^=\s]+)=", args))
    return made


def test_k8s_every_file_a_setting_names_is_mounted():
    """A container told WHISTLE_JURISDICTION_FILE=/etc/… (by its ConfigMap) has a volume mounted
    over that path, from a ConfigMap key the install creates: else the command fails at start,
    as the schedules Job did."""
    made = readme_made_keys()
    checked = []
    for doc in manifests():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        volumes = {v["name"]: v for v in doc["spec"]["template"]["spec"].get("volumes", [])}
        for c in containers(doc):
            env = container_env(c)
            for name in FILE_SETTINGS:
                path = env.get(name, "")
                if not path.startswith("/"):
                    continue
                where = f"{doc['metadata']['name']}/{c['name']}: {name}={path}"
                mounts = [m for m in c.get("volumeMounts", []) if path.startswith(m["mountPath"].rstrip("/") + "/")]
                assert mounts, f"{where} is not mounted"
                [mount] = mounts
                volume = volumes[mount["name"]]
                source = volume.get("configMap", {}).get("name") or volume.get("secret", {}).get("secretName")
                key = path[len(mount["mountPath"].rstrip("/")) + 1:]
                assert key in made.get(source, set()), f"{where}: no key {key} in {source} as deploy/README.md makes it"
                checked.append(where)
    containers_named = {w.split(":")[0] for w in checked}
    assert {"whistle-api/api", "whistle-worker/worker", "whistle-migrate/migrate", "whistle-schedules/schedules",
            "whistle-schedules/search-attributes"} <= containers_named, checked


def test_temporal_chart_values_use_postgresql():
    values = yaml.safe_load((DEPLOY / "k8s" / "temporal-values.yaml").read_text())
    persistence = values["server"]["config"]["persistence"]
    for store in ("default", "visibility"):
        assert persistence[store]["driver"] == "sql" and persistence[store]["sql"]["driver"] == "postgres12"
        assert persistence[store]["sql"]["existingSecret"] and "password" not in persistence[store]["sql"]
    assert not any(values[x]["enabled"] for x in ("cassandra", "mysql", "elasticsearch"))
    assert {"name": "whistle", "retention": "30d"} in values["server"]["config"]["namespaces"]["namespace"]
    assert any(e["name"] == "TEMPORAL_CODEC_ENDPOINT" for e in values["web"]["additionalEnv"])
    assert re.search(r"^# Values for Temporal's own Helm chart", (DEPLOY / "k8s" / "temporal-values.yaml").read_text(), re.M)


def test_k8s_settings_are_kubernetes_own():
    """What the Kubernetes containers are told fits Kubernetes, not the compose host: the Web UI's
    origin is the chart's UI ingress; the ingress controller's network is the trusted proxy; the
    API replicas share a Redis the manifests run; Temporal's client speaks the TLS the chart's
    frontend serves, with a CA the container has (test above: every file a setting names)."""
    readme = (DEPLOY / "README.md").read_text()
    for name, path in CONFIG_MAPS.items():
        assert f"kubectl create configmap {name} --from-env-file={path.relative_to(ROOT)}" in readme
    values = yaml.safe_load((DEPLOY / "k8s" / "temporal-values.yaml").read_text())
    docs = manifests()
    [api] = [c for d in whistle_workloads(docs) for c in containers(d) if c["name"] == "api"]
    env = container_env(api)
    assert env["WHISTLE_CODEC_CORS_ORIGINS"] == ",".join(f"https://{h}" for h in values["web"]["ingress"]["hosts"])
    assert trusted_networks(env["WHISTLE_TRUSTED_PROXIES"]) and env["WHISTLE_TRUSTED_PROXIES"] in readme  # the placeholder, explained

    store = urlsplit(env["WHISTLE_RATE_LIMIT_STORAGE"])
    assert store.scheme == "redis"
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    service = services[store.hostname.split(".")[0]]
    assert store.port in [p["port"] for p in service["spec"]["ports"]]
    [redis] = [d for d in docs if d["kind"] == "Deployment"
               and service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
    assert redis["spec"]["template"]["spec"]["containers"][0]["args"][0] == "redis-server"
    async_storage(env["WHISTLE_RATE_LIMIT_STORAGE"])  # the API's asyncio client is installed; the URI parses

    tls = values["server"]["config"]["tls"]["frontend"]
    mounts = {m["name"]: m["mountPath"] for m in values["server"]["additionalVolumeMounts"]}
    volumes = {v["name"]: v for v in values["server"]["additionalVolumes"]}
    for file in (tls["server"]["certFile"], tls["server"]["keyFile"], *tls["client"]["rootCaFiles"]):
        [name] = [n for n, p in mounts.items() if file.startswith(p + "/")]
        assert volumes[name]["secret"]["secretName"]
    for part in ("web", "admintools"):  # the Web UI and the namespace job reach the frontend over TLS too
        ca = next(e["value"] for e in values[part]["additionalEnv"] if e["name"] in ("TEMPORAL_TLS_CA", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"))
        assert any(ca.startswith(m["mountPath"] + "/") for m in values[part]["additionalVolumeMounts"]), part
    for doc in whistle_workloads(docs):
        for c in containers(doc):
            profile = ClientConfigProfile.load(override_env_vars=container_env(c))  # as the SDK reads it
            assert profile.tls and not profile.tls.disabled, c["name"]
            assert profile.tls.server_name == tls["client"]["serverName"] == profile.address.rsplit(":", 1)[0], c["name"]
