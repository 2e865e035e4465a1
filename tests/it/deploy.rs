//! The deployment files, checked without Docker or a cluster: the Dockerfile
//! and `.dockerignore` as text, `deploy/container.toml` and the Kubernetes
//! manifests in `deploy/kubernetes/` parsed (YAML, and the gateway's own
//! config parser for `gateway.toml`), and the policies ConfigMap compared
//! byte for byte with `policies/`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use erasure_gateway::config::Config;
use yaml_rust2::{Yaml, YamlLoader};

/// The gateway's uid and gid in the image (distroless `nonroot`).
const NONROOT: i64 = 65532;
const CONTAINER: &str = "erasure-gateway";
const REGENERATE: &str = "run deploy/kubernetes/policies-configmap.sh";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---- Kubernetes manifests ----------------------------------------------------

/// Every YAML document in `deploy/kubernetes/*.yaml`, with its file name.
struct Manifests {
    docs: Vec<(String, Yaml)>,
}

impl Manifests {
    fn load() -> Self {
        let dir = root().join("deploy/kubernetes");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        files.sort();
        let mut docs = Vec::new();
        for path in files {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let parsed = YamlLoader::load_from_str(&text)
                .unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"));
            for doc in parsed.into_iter().filter(|d| !d.is_null()) {
                docs.push((name.clone(), doc));
            }
        }
        assert!(!docs.is_empty(), "no manifests in {}", dir.display());
        Manifests { docs }
    }

    fn of_kind(&self, kind: &str) -> Vec<&Yaml> {
        self.docs
            .iter()
            .filter(|(_, d)| d["kind"].as_str() == Some(kind))
            .map(|(_, d)| d)
            .collect()
    }

    fn only(&self, kind: &str) -> &Yaml {
        let found = self.of_kind(kind);
        assert_eq!(found.len(), 1, "expected exactly one {kind}");
        found[0]
    }

    fn config_map(&self, name: &str) -> &Yaml {
        self.of_kind("ConfigMap")
            .into_iter()
            .find(|d| d["metadata"]["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no ConfigMap named {name}"))
    }

    fn pod_spec(&self) -> &Yaml {
        &self.only("Deployment")["spec"]["template"]["spec"]
    }

    fn container(&self) -> &Yaml {
        let containers = list(&self.pod_spec()["containers"]);
        containers
            .iter()
            .find(|c| c["name"].as_str() == Some(CONTAINER))
            .unwrap_or_else(|| panic!("the Deployment has no container named {CONTAINER}"))
    }

    /// The volume mounted at exactly `path` in the gateway container, with
    /// its mount.
    fn mount_at(&self, path: &Path) -> (&Yaml, &Yaml) {
        let mount = list(&self.container()["volumeMounts"])
            .iter()
            .find(|m| m["mountPath"].as_str().map(Path::new) == Some(path))
            .unwrap_or_else(|| panic!("nothing is mounted at {}", path.display()));
        (
            self.volume(text(&mount["name"], "volumeMounts[].name")),
            mount,
        )
    }

    fn volume(&self, name: &str) -> &Yaml {
        list(&self.pod_spec()["volumes"])
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no volume named {name}"))
    }

    /// The ConfigMap holding `gateway.toml`, parsed by the gateway's parser.
    fn gateway_config(&self) -> Config {
        let holders: Vec<&Yaml> = self
            .of_kind("ConfigMap")
            .into_iter()
            .filter(|d| !d["data"]["gateway.toml"].is_badvalue())
            .collect();
        assert_eq!(holders.len(), 1, "exactly one ConfigMap holds gateway.toml");
        let toml = text(&holders[0]["data"]["gateway.toml"], "gateway.toml");
        Config::parse(toml, Path::new("configmap"))
            .unwrap_or_else(|e| panic!("gateway.toml in the ConfigMap: {e}"))
    }

    /// A container port, given by number or by name, as a number.
    fn container_port(&self, port: &Yaml) -> i64 {
        if let Some(number) = port.as_i64() {
            return number;
        }
        let name = text(port, "port");
        list(&self.container()["ports"])
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64())
            .unwrap_or_else(|| panic!("the container has no port named {name}"))
    }

    /// A securityContext field as the container sees it: its own setting,
    /// else the pod's.
    fn effective_security(&self, key: &str) -> &Yaml {
        let own = &self.container()["securityContext"][key];
        if own.is_badvalue() {
            &self.pod_spec()["securityContext"][key]
        } else {
            own
        }
    }
}

fn text<'a>(value: &'a Yaml, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, found {value:?}"))
}

fn int(value: &Yaml, what: &str) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{what}: expected an integer, found {value:?}"))
}

fn list(value: &Yaml) -> &[Yaml] {
    value.as_vec().map_or(&[], Vec::as_slice)
}

/// String-to-string mapping (labels, selectors, ConfigMap data).
fn string_map(value: &Yaml) -> BTreeMap<String, String> {
    value
        .as_hash()
        .map(|hash| {
            hash.iter()
                .map(|(k, v)| (text(k, "key").to_owned(), text(v, "value").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A Kubernetes quantity in base units (cores, bytes).
fn quantity(value: &Yaml) -> f64 {
    let raw = match value {
        Yaml::Integer(n) => return *n as f64,
        Yaml::Real(r) => r.as_str(),
        other => text(other, "quantity"),
    };
    let suffixes: [(&str, f64); 9] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("m", 0.001),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (suffix, factor) in suffixes {
        if let Some(number) = raw.strip_suffix(suffix) {
            return number.parse::<f64>().unwrap() * factor;
        }
    }
    raw.parse()
        .unwrap_or_else(|_| panic!("not a quantity: {raw}"))
}

/// The files of `policies/` the gateway loads: `schema.cedarschema`, every
/// `*.cedar` and `entities.json` (not README.md, not `tests/`).
fn loaded_policy_files() -> BTreeMap<String, String> {
    let dir = root().join("policies");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            let loaded = name == "schema.cedarschema"
                || name == "entities.json"
                || p.extension().is_some_and(|e| e == "cedar");
            loaded.then(|| (name, std::fs::read_to_string(&p).unwrap()))
        })
        .collect()
}

#[test]
fn every_manifest_parses_and_the_kustomization_lists_them_all() {
    let manifests = Manifests::load();
    let mut kinds = BTreeSet::new();
    for (file, doc) in &manifests.docs {
        let kind = text(&doc["kind"], &format!("{file}: kind"));
        text(&doc["apiVersion"], &format!("{file}: apiVersion"));
        if kind != "Kustomization" {
            text(&doc["metadata"]["name"], &format!("{file}: metadata.name"));
        }
        kinds.insert(kind.to_owned());
    }
    for kind in ["Deployment", "Service", "ConfigMap", "Kustomization"] {
        assert!(kinds.contains(kind), "no {kind} in deploy/kubernetes");
    }
    assert!(
        manifests.of_kind("ConfigMap").len() >= 2,
        "config and policies ConfigMaps"
    );

    let listed: BTreeSet<String> = list(&manifests.only("Kustomization")["resources"])
        .iter()
        .map(|r| text(r, "resources[]").to_owned())
        .collect();
    let files: BTreeSet<String> = manifests
        .docs
        .iter()
        .filter(|(_, d)| d["kind"].as_str() != Some("Kustomization"))
        .map(|(file, _)| file.clone())
        .collect();
    assert_eq!(
        listed, files,
        "kustomization.yaml resources vs. the manifest files"
    );
}

#[test]
fn the_deployment_selects_its_own_pods_and_so_do_the_service_and_the_budget() {
    let manifests = Manifests::load();
    let deployment = manifests.only("Deployment");
    let labels = string_map(&deployment["spec"]["template"]["metadata"]["labels"]);
    let selector = string_map(&deployment["spec"]["selector"]["matchLabels"]);
    assert!(
        selects(&selector, &labels),
        "Deployment selector {selector:?} vs. pod labels {labels:?}"
    );
    let service = string_map(&manifests.only("Service")["spec"]["selector"]);
    assert!(
        selects(&service, &labels),
        "Service selector {service:?} vs. pod labels {labels:?}"
    );
    for budget in manifests.of_kind("PodDisruptionBudget") {
        let selector = string_map(&budget["spec"]["selector"]["matchLabels"]);
        assert!(
            selects(&selector, &labels),
            "PDB selector {selector:?} vs. pod labels {labels:?}"
        );
    }
    assert!(
        int(&deployment["spec"]["replicas"], "replicas") >= 2,
        "more than one replica"
    );
}

#[test]
fn the_probes_ask_readyz_and_healthz_on_the_admin_port() {
    let manifests = Manifests::load();
    let config = manifests.gateway_config();
    let container = manifests.container();
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let probe_yaml = &container[probe];
        let get = &probe_yaml["httpGet"];
        assert_eq!(text(&get["path"], probe), path, "{probe} path");
        assert_eq!(
            manifests.container_port(&get["port"]),
            i64::from(config.admin.listen.port()),
            "{probe} must reach the admin listener"
        );
        let period = probe_yaml["periodSeconds"].as_i64().unwrap_or(10);
        assert!((1..=60).contains(&period), "{probe} periodSeconds {period}");
        let timeout = probe_yaml["timeoutSeconds"].as_i64().unwrap_or(1);
        assert!(
            timeout < period,
            "{probe}: timeout {timeout}s must be shorter than period {period}s"
        );
    }
    // A pod that stops answering is restarted, but not on a single hiccup.
    let liveness = &container["livenessProbe"];
    let patience = liveness["periodSeconds"].as_i64().unwrap_or(10)
        * liveness["failureThreshold"].as_i64().unwrap_or(3);
    assert!(patience >= 10, "liveness gives up after {patience}s");
}

#[test]
fn the_container_runs_as_non_root_with_a_read_only_root_filesystem() {
    let manifests = Manifests::load();
    let security = &manifests.container()["securityContext"];
    assert_eq!(
        manifests.effective_security("runAsNonRoot").as_bool(),
        Some(true)
    );
    assert_eq!(
        manifests.effective_security("runAsUser").as_i64(),
        Some(NONROOT)
    );
    assert_eq!(
        manifests.effective_security("runAsGroup").as_i64(),
        Some(NONROOT)
    );
    assert_eq!(
        manifests.effective_security("seccompProfile")["type"].as_str(),
        Some("RuntimeDefault")
    );
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_ne!(security["privileged"].as_bool(), Some(true));
    let dropped: Vec<&str> = list(&security["capabilities"]["drop"])
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(dropped.contains(&"ALL"), "capabilities.drop {dropped:?}");
    assert!(
        list(&security["capabilities"]["add"]).is_empty(),
        "no capabilities added"
    );
    assert_eq!(
        manifests.pod_spec()["automountServiceAccountToken"].as_bool(),
        Some(false),
        "the gateway does not talk to the Kubernetes API"
    );
}

#[test]
fn the_container_requests_and_limits_cpu_and_memory() {
    let manifests = Manifests::load();
    let resources = &manifests.container()["resources"];
    for resource in ["cpu", "memory"] {
        let request = &resources["requests"][resource];
        let limit = &resources["limits"][resource];
        assert!(!request.is_badvalue(), "requests.{resource} is set");
        assert!(!limit.is_badvalue(), "limits.{resource} is set");
        assert!(
            quantity(request) <= quantity(limit),
            "{resource}: request {request:?} exceeds limit {limit:?}"
        );
    }
    let memory = quantity(&resources["requests"]["memory"]);
    assert!(
        memory >= 64.0 * 1024.0 * 1024.0,
        "at least 64Mi of memory requested"
    );
}

#[test]
fn the_trail_volume_is_mounted_writable_at_the_trail_directory() {
    let manifests = Manifests::load();
    let config = manifests.gateway_config();
    let trail_dir = config.audit.path.parent().unwrap();
    let (volume, mount) = manifests.mount_at(trail_dir);
    assert_ne!(
        mount["readOnly"].as_bool(),
        Some(true),
        "the trail mount is writable"
    );
    assert!(
        mount["subPath"].is_badvalue(),
        "the trail is a whole volume"
    );
    assert!(
        ["emptyDir", "persistentVolumeClaim", "ephemeral"]
            .iter()
            .any(|kind| !volume[*kind].is_badvalue()),
        "the trail volume must be writable storage, found {volume:?}"
    );
    // The volume belongs to the gateway's group, so uid 65532 may write.
    assert_eq!(
        manifests.pod_spec()["securityContext"]["fsGroup"].as_i64(),
        Some(NONROOT)
    );

    // And the trail leaves the pod: on stdout, or through a sidecar that
    // reads the same volume.
    let volume_name = text(&volume["name"], "volume name");
    let pod = manifests.pod_spec();
    let sidecar = list(&pod["containers"])
        .iter()
        .chain(list(&pod["initContainers"]))
        .filter(|c| c["name"].as_str() != Some(CONTAINER))
        .any(|c| {
            list(&c["volumeMounts"])
                .iter()
                .any(|m| m["name"].as_str() == Some(volume_name))
        });
    assert!(
        config.audit.stdout || sidecar,
        "nothing ships the trail: set [audit] stdout = true or add a collector sidecar"
    );
}

#[test]
fn the_policies_configmap_is_mounted_as_a_directory_where_the_config_looks() {
    let manifests = Manifests::load();
    let config = manifests.gateway_config();
    assert_eq!(
        config.policies.dir,
        Path::new("/etc/erasure-gateway/policies")
    );
    let (volume, mount) = manifests.mount_at(&config.policies.dir);
    assert!(
        mount["subPath"].is_badvalue(),
        "a subPath mount never sees ConfigMap updates: hot reload needs a directory mount"
    );
    let name = text(
        &volume["configMap"]["name"],
        "policies volume configMap.name",
    );
    assert!(
        volume["configMap"]["items"].is_badvalue(),
        "every key of the ConfigMap is mounted"
    );
    let map = manifests.config_map(name);
    assert!(
        !map["data"]["schema.cedarschema"].is_badvalue(),
        "{name} holds the schema"
    );
}

#[test]
fn the_policies_configmap_matches_the_policies_directory_byte_for_byte() {
    let manifests = Manifests::load();
    let config = manifests.gateway_config();
    let (volume, _) = manifests.mount_at(&config.policies.dir);
    let map = manifests.config_map(text(&volume["configMap"]["name"], "configMap.name"));
    assert!(
        map["binaryData"].is_badvalue(),
        "no binaryData in the policies ConfigMap"
    );
    let data = string_map(&map["data"]);
    let files = loaded_policy_files();
    assert!(files.contains_key("schema.cedarschema"));
    let data_keys: BTreeSet<&String> = data.keys().collect();
    let file_names: BTreeSet<&String> = files.keys().collect();
    assert_eq!(
        data_keys, file_names,
        "the policies ConfigMap's files differ from policies/: {REGENERATE}"
    );
    for (name, contents) in &files {
        assert!(
            data[name] == *contents,
            "{name} in the policies ConfigMap differs from policies/{name}: {REGENERATE}"
        );
    }
}

#[test]
fn the_configmap_gateway_toml_is_a_valid_config_that_matches_the_mounts() {
    let manifests = Manifests::load();
    let config = manifests.gateway_config();
    let proxy: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    assert_eq!(config.proxy.listen, proxy);
    assert!(
        config.admin.listen.ip().is_unspecified(),
        "kubelet probes reach the pod IP"
    );

    // The container's ports are the listeners'.
    let container = manifests.container();
    let ports: BTreeSet<i64> = list(&container["ports"])
        .iter()
        .map(|p| int(&p["containerPort"], "containerPort"))
        .collect();
    for port in [config.proxy.listen.port(), config.admin.listen.port()] {
        assert!(
            ports.contains(&i64::from(port)),
            "containerPort {port} declared"
        );
    }

    // The gateway reads this ConfigMap: ERASURE_GATEWAY_CONFIG (or --config)
    // names gateway.toml in a directory mount of it.
    let env = list(&container["env"])
        .iter()
        .find(|e| e["name"].as_str() == Some("ERASURE_GATEWAY_CONFIG"))
        .map(|e| text(&e["value"], "ERASURE_GATEWAY_CONFIG").to_owned());
    let args: Vec<&str> = list(&container["args"])
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    let flag = args
        .iter()
        .position(|a| *a == "--config")
        .map(|i| args[i + 1].to_owned());
    let config_file = flag
        .or(env)
        .expect("ERASURE_GATEWAY_CONFIG or --config is set");
    let config_file = Path::new(&config_file);
    assert_eq!(config_file.file_name().unwrap(), "gateway.toml");
    let (volume, mount) = manifests.mount_at(config_file.parent().unwrap());
    assert!(
        mount["subPath"].is_badvalue(),
        "the config is a directory mount"
    );
    let name = text(&volume["configMap"]["name"], "config volume configMap.name");
    assert!(
        !manifests.config_map(name)["data"]["gateway.toml"].is_badvalue(),
        "{name} holds gateway.toml"
    );
    assert!(
        args.contains(&"serve") || args.is_empty(),
        "the container serves: {args:?}"
    );
}

#[test]
fn the_grace_period_outlasts_the_drain() {
    let manifests = Manifests::load();
    let config = manifests.gateway_config();
    let grace = manifests.pod_spec()["terminationGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(30);
    let pre_stop = manifests.container()["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .unwrap_or(0);
    let drain = i64::try_from(config.proxy.shutdown_grace.as_secs()).unwrap();
    assert!(
        grace > pre_stop + drain,
        "terminationGracePeriodSeconds {grace} must exceed preStop {pre_stop}s + shutdown_grace {drain}s"
    );
}

#[test]
fn the_service_sends_port_8080_to_the_proxy_and_keeps_the_admin_port_private() {
    let manifests = Manifests::load();
    let config = manifests.gateway_config();
    let service = manifests.only("Service");
    let kind = service["spec"]["type"].as_str().unwrap_or("ClusterIP");
    assert_eq!(kind, "ClusterIP");
    let ports = list(&service["spec"]["ports"]);
    let http = ports
        .iter()
        .find(|p| p["name"].as_str() == Some("http"))
        .expect("a Service port named http");
    assert_eq!(int(&http["port"], "port"), 8080);
    let target = if http["targetPort"].is_badvalue() {
        &http["port"]
    } else {
        &http["targetPort"]
    };
    assert_eq!(
        manifests.container_port(target),
        i64::from(config.proxy.listen.port())
    );
    for port in ports {
        let target = if port["targetPort"].is_badvalue() {
            &port["port"]
        } else {
            &port["targetPort"]
        };
        assert_ne!(
            manifests.container_port(target),
            i64::from(config.admin.listen.port()),
            "the admin port (reload, authorize) stays off the Service"
        );
    }
}

// ---- Dockerfile and .dockerignore ---------------------------------------------

/// Dockerfile instructions: (KEYWORD, arguments), continuation lines joined
/// and comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, args) = current
                    .split_once(char::is_whitespace)
                    .unwrap_or((&current, ""));
                instructions.push((keyword.to_uppercase(), args.trim().to_owned()));
                current.clear();
            }
        }
    }
    instructions
}

fn args_of<'a>(instructions: &'a [(String, String)], keyword: &str) -> Vec<&'a str> {
    instructions
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, a)| a.as_str())
        .collect()
}

/// The image a `FROM` names, without `--platform` and `AS stage`.
fn from_image(args: &str) -> &str {
    args.split_whitespace()
        .find(|word| !word.starts_with("--"))
        .unwrap()
}

#[test]
fn the_dockerfile_is_multi_stage_pinned_locked_and_non_root() {
    let instructions = dockerfile();
    let froms = args_of(&instructions, "FROM");
    assert!(froms.len() >= 2, "a build stage and a runtime stage");
    let stages: Vec<String> = froms
        .iter()
        .filter_map(|args| {
            let words: Vec<&str> = args.split_whitespace().collect();
            let at = words.iter().position(|w| w.eq_ignore_ascii_case("as"))?;
            Some(words.get(at + 1)?.to_string())
        })
        .collect();
    for args in &froms {
        let image = from_image(args);
        if stages.iter().any(|s| s == image) {
            continue;
        }
        let (name, digest) = image.split_once('@').unwrap_or((image, ""));
        let tag = name
            .rsplit_once('/')
            .map_or(name, |(_, last)| last)
            .split_once(':')
            .map(|(_, tag)| tag);
        assert!(
            digest.starts_with("sha256:") || tag.is_some(),
            "{image}: pin a tag or digest"
        );
        assert_ne!(tag, Some("latest"), "{image}: no latest tag");
    }
    assert!(
        from_image(froms.last().unwrap()).contains("distroless"),
        "distroless runtime"
    );

    // The Rust toolchain image is an exact release at least the crate's MSRV.
    let rust = froms
        .iter()
        .map(|a| from_image(a))
        .find(|image| image.starts_with("rust:") || image.contains("/rust:"))
        .expect("a rust: build image");
    let version: Vec<u64> = rust
        .split_once(':')
        .unwrap()
        .1
        .split(['-', '@'])
        .next()
        .unwrap()
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(version.len(), 3, "{rust}: an exact x.y.z toolchain");
    let manifest: toml::Table = read("Cargo.toml").parse().unwrap();
    let msrv: Vec<u64> = manifest["package"]["rust-version"]
        .as_str()
        .unwrap()
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        version[..2] >= msrv[..2],
        "{rust} is older than rust-version"
    );

    let runs = args_of(&instructions, "RUN");
    let builds: Vec<&&str> = runs.iter().filter(|r| r.contains("cargo build")).collect();
    assert!(!builds.is_empty(), "cargo build");
    for run in &builds {
        assert!(run.contains("--locked"), "cargo build --locked: {run}");
        assert!(run.contains("--release"), "cargo build --release: {run}");
    }

    let users = args_of(&instructions, "USER");
    let user = *users.last().expect("a USER");
    assert_eq!(
        user,
        format!("{NONROOT}:{NONROOT}"),
        "numeric uid:gid, so runAsNonRoot can check it"
    );
    assert_eq!(args_of(&instructions, "STOPSIGNAL"), ["SIGTERM"]);
    let health = args_of(&instructions, "HEALTHCHECK");
    assert_eq!(health.len(), 1);
    let cmd = health[0]
        .split_once("CMD")
        .expect("HEALTHCHECK … CMD")
        .1
        .trim();
    assert!(cmd.starts_with('['), "exec form: the image has no shell");
    assert!(
        cmd.contains("erasure-gateway") && cmd.contains("\"healthcheck\""),
        "the binary's own health check: {cmd}"
    );
    let exposed: Vec<&str> = args_of(&instructions, "EXPOSE")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .collect();
    assert!(
        exposed.contains(&"8080") && exposed.contains(&"9090"),
        "EXPOSE {exposed:?}"
    );
    assert!(!args_of(&instructions, "WORKDIR").is_empty(), "a WORKDIR");
}

#[test]
fn the_dockerfile_dependency_layer_stubs_every_target_cargo_toml_declares() {
    let instructions = dockerfile();
    // Everything before the real sources arrive.
    let sources_at = instructions
        .iter()
        .position(|(k, a)| k == "COPY" && a.split_whitespace().next() == Some("src"))
        .expect("COPY src");
    let layer: Vec<&(String, String)> = instructions[..sources_at].iter().collect();
    assert!(
        layer
            .iter()
            .any(|(k, a)| k == "COPY" && a.contains("Cargo.toml") && a.contains("Cargo.lock")),
        "the manifest and lockfile come first"
    );
    let stubs: String = layer
        .iter()
        .filter(|(k, _)| k == "RUN")
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        stubs.contains("cargo fetch --locked"),
        "dependencies fetched in their own layer"
    );
    assert!(
        stubs.contains("cargo build"),
        "dependencies built in their own layer"
    );

    // Cargo refuses a manifest whose declared target has no file, so each one
    // needs a stub; auto-discovered ones (examples/, tests/) do not.
    let manifest: toml::Table = read("Cargo.toml").parse().unwrap();
    let package = manifest["package"]["name"].as_str().unwrap();
    let mut expected = vec!["src/main.rs".to_owned(), "src/lib.rs".to_owned()];
    for (kind, dir) in [
        ("bin", "src/bin"),
        ("example", "examples"),
        ("test", "tests"),
        ("bench", "benches"),
    ] {
        let Some(targets) = manifest.get(kind).and_then(toml::Value::as_array) else {
            continue;
        };
        for target in targets {
            let name = target["name"].as_str().unwrap();
            let path = match target.get("path").and_then(toml::Value::as_str) {
                Some(path) => path.to_owned(),
                None if kind == "bin" && name == package => "src/main.rs".to_owned(),
                None => format!("{dir}/{name}.rs"),
            };
            expected.push(path);
        }
    }
    for path in expected {
        assert!(
            stubs.contains(&format!("> {path}")),
            "the Dockerfile's dependency layer needs a stub for {path} (declared in Cargo.toml)"
        );
    }
}

#[test]
fn the_image_config_listens_on_all_interfaces_and_writes_only_to_the_volume() {
    let instructions = dockerfile();
    let config = Config::parse(
        &read("deploy/container.toml"),
        Path::new("deploy/container.toml"),
    )
    .unwrap();
    assert_eq!(
        config.proxy.listen,
        "0.0.0.0:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        config.admin.listen,
        "0.0.0.0:9090".parse::<SocketAddr>().unwrap()
    );

    let copies = args_of(&instructions, "COPY");
    let config_copy = copies
        .iter()
        .find(|a| a.split_whitespace().next() == Some("deploy/container.toml"))
        .expect("COPY deploy/container.toml");
    let config_dest = config_copy.split_whitespace().last().unwrap();
    assert!(
        args_of(&instructions, "ENV")
            .contains(&format!("ERASURE_GATEWAY_CONFIG={config_dest}").as_str()),
        "ENV ERASURE_GATEWAY_CONFIG={config_dest}"
    );

    let policies_copy = copies
        .iter()
        .find(|a| a.contains("policies/schema.cedarschema"))
        .expect("COPY policies/…");
    for file in ["policies/*.cedar", "policies/entities.json"] {
        assert!(policies_copy.contains(file), "the image carries {file}");
    }
    let policies_dest = policies_copy
        .split_whitespace()
        .last()
        .unwrap()
        .trim_end_matches('/');
    assert_eq!(config.policies.dir, Path::new(policies_dest));

    let volumes: Vec<String> = args_of(&instructions, "VOLUME")
        .iter()
        .flat_map(|a| a.trim_matches(['[', ']']).split([',', ' ']))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    assert!(
        volumes.iter().any(|v| config.audit.path.starts_with(v)),
        "the trail {} is on a VOLUME ({volumes:?})",
        config.audit.path.display()
    );
}

#[test]
fn the_dockerignore_keeps_build_output_dependencies_and_secrets_out() {
    let patterns: BTreeSet<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches('/').trim_end_matches('/').to_owned())
        .collect();
    let any = |options: &[&str]| options.iter().any(|o| patterns.contains(*o));
    assert!(any(&["target", "**/target"]), "target/ excluded");
    assert!(
        any(&["**/node_modules", "tests/sdk/node_modules"]),
        "node_modules excluded"
    );
    assert!(any(&[".git"]), ".git excluded");
    assert!(any(&["**/*-key.pem", "*-key.pem"]), "private keys excluded");
    assert!(any(&["audit"]), "decision trails excluded");
    // What the Dockerfile copies stays in.
    for needed in [
        "src",
        "Cargo.toml",
        "Cargo.lock",
        "policies",
        "deploy",
        "deploy/container.toml",
    ] {
        assert!(
            !patterns.contains(needed),
            ".dockerignore must not exclude {needed}"
        );
    }
}
