//! The deployment files, checked without Docker or a cluster: the Dockerfile
//! and `.dockerignore` as text, `deploy/container.toml` and the Kubernetes
//! manifests in `deploy/kubernetes/` (and its optional components
//! `monitoring/` and `vector/`) parsed (YAML, and the gateway's own config
//! parser for `gateway.toml`), and the policies ConfigMap compared byte for
//! byte with `policies/`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use erasure_gateway::config::{AuditConfig, Config};
use erasure_gateway::trail::naming::{self, TrailName};
use yaml_rust2::{Yaml, YamlLoader};

/// The gateway's uid and gid in the image (distroless `nonroot`).
const NONROOT: i64 = 65532;
const CONTAINER: &str = "erasure-gateway";
const REGENERATE: &str = "run deploy/kubernetes/policies-configmap.sh";
const KUBERNETES: &str = "deploy/kubernetes";
/// The Secret the operator creates; `secret.yaml` shows its shape only.
const SECRET: &str = "erasure-gateway-secrets";
const SECRET_EXAMPLE: &str = "secret.yaml";
/// The optional kustomize components, subdirectories of `deploy/kubernetes`.
const MONITORING: &str = "deploy/kubernetes/monitoring";
const VECTOR: &str = "deploy/kubernetes/vector";
/// The namespace allowed to reach the admin port (Prometheus).
const MONITORING_NAMESPACE: &str = "monitoring";
/// SHA-256 of the empty string: a well-formed stand-in admin token hash.
const STAND_IN_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---- Kubernetes manifests ----------------------------------------------------

/// Every YAML document in one directory's `*.yaml`, with its file name: the
/// base `deploy/kubernetes/`, or one of its components.
struct Manifests {
    docs: Vec<(String, Yaml)>,
}

impl Manifests {
    /// The base, `deploy/kubernetes/*.yaml`.
    fn load() -> Self {
        Self::load_from(KUBERNETES)
    }

    fn load_from(relative: &str) -> Self {
        let dir = root().join(relative);
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
                .unwrap_or_else(|e| panic!("{relative}/{name} is not valid YAML: {e}"));
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

    fn service(&self, name: &str) -> &Yaml {
        self.of_kind("Service")
            .into_iter()
            .find(|d| d["metadata"]["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no Service named {name}"))
    }

    /// The Service callers use: the one with a cluster IP.
    fn client_service(&self) -> &Yaml {
        let found: Vec<&Yaml> = self
            .of_kind("Service")
            .into_iter()
            .filter(|s| s["spec"]["clusterIP"].as_str() != Some("None"))
            .collect();
        assert_eq!(found.len(), 1, "exactly one Service with a cluster IP");
        found[0]
    }

    /// The StatefulSet's governing Service (its `serviceName`).
    fn headless_service(&self) -> &Yaml {
        self.service(text(
            &self.workload()["spec"]["serviceName"],
            "StatefulSet serviceName",
        ))
    }

    fn workload(&self) -> &Yaml {
        self.only("StatefulSet")
    }

    fn pod_spec(&self) -> &Yaml {
        &self.workload()["spec"]["template"]["spec"]
    }

    fn pod_labels(&self) -> BTreeMap<String, String> {
        string_map(&self.workload()["spec"]["template"]["metadata"]["labels"])
    }

    fn container(&self) -> &Yaml {
        let containers = list(&self.pod_spec()["containers"]);
        containers
            .iter()
            .find(|c| c["name"].as_str() == Some(CONTAINER))
            .unwrap_or_else(|| panic!("the StatefulSet has no container named {CONTAINER}"))
    }

    /// The volume mounted at exactly `path` in the gateway container, with
    /// its mount.
    fn mount_at(&self, path: &Path) -> (&Yaml, &Yaml) {
        let mount = mount_at(self.container(), path);
        (
            self.volume(text(&mount["name"], "volumeMounts[].name")),
            mount,
        )
    }

    /// A pod volume, or else a volumeClaimTemplate, by name.
    fn volume(&self, name: &str) -> &Yaml {
        self.pod_volume(name)
            .or_else(|| self.claim_template(name))
            .unwrap_or_else(|| panic!("no volume or volumeClaimTemplate named {name}"))
    }

    fn pod_volume(&self, name: &str) -> Option<&Yaml> {
        list(&self.pod_spec()["volumes"])
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
    }

    fn claim_template(&self, name: &str) -> Option<&Yaml> {
        list(&self.workload()["spec"]["volumeClaimTemplates"])
            .iter()
            .find(|t| t["metadata"]["name"].as_str() == Some(name))
    }

    /// `gateway.toml` as written in the ConfigMap that holds it.
    fn gateway_toml_text(&self) -> &str {
        let holders: Vec<&Yaml> = self
            .of_kind("ConfigMap")
            .into_iter()
            .filter(|d| !d["data"]["gateway.toml"].is_badvalue())
            .collect();
        assert_eq!(holders.len(), 1, "exactly one ConfigMap holds gateway.toml");
        text(&holders[0]["data"]["gateway.toml"], "gateway.toml")
    }

    /// `gateway.toml` as a TOML table: the settings as written, before the
    /// gateway's parser reads any file they name.
    fn gateway_toml(&self) -> toml::Table {
        self.gateway_toml_text()
            .parse()
            .unwrap_or_else(|e| panic!("gateway.toml in the ConfigMap is not TOML: {e}"))
    }

    /// A path setting of `gateway.toml`, as written.
    fn config_path(&self, section: &str, key: &str) -> Option<PathBuf> {
        self.gateway_toml()
            .get(section)
            .and_then(|s| s.get(key))
            .map(|v| PathBuf::from(v.as_str().expect("a path is a string")))
    }

    /// The ConfigMap's `gateway.toml`, parsed by the gateway's parser. The
    /// parser reads `[admin] token_sha256_file` (the mounted Secret, absent
    /// here), so that path is pointed at a stand-in file holding a hash;
    /// the other settings are parsed as written.
    fn gateway_config(&self) -> Config {
        let mut toml = self.gateway_toml_text().to_owned();
        let stand_in_dir = tempfile::tempdir().unwrap();
        if let Some(path) = self.config_path("admin", "token_sha256_file") {
            let stand_in = stand_in_dir.path().join("admin-token.sha256");
            std::fs::write(&stand_in, format!("{STAND_IN_SHA256}\n")).unwrap();
            let written = format!("\"{}\"", path.display());
            assert_eq!(
                toml.matches(&written).count(),
                1,
                "token_sha256_file {written} appears once in gateway.toml"
            );
            toml = toml.replace(&written, &format!("{:?}", stand_in.display().to_string()));
        }
        Config::parse(&toml, Path::new("configmap"))
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

    /// A Service port's target on the gateway container, as a number.
    fn service_target(&self, port: &Yaml) -> i64 {
        let target = if port["targetPort"].is_badvalue() {
            &port["port"]
        } else {
            &port["targetPort"]
        };
        self.container_port(target)
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

    /// The resources a kustomization lists: `resources` and patch files.
    fn kustomized_files(&self, kind: &str) -> BTreeSet<String> {
        let kustomization = self.only(kind);
        list(&kustomization["resources"])
            .iter()
            .map(|r| text(r, "resources[]").to_owned())
            .chain(
                list(&kustomization["patches"])
                    .iter()
                    .map(|p| text(&p["path"], "patches[].path").to_owned()),
            )
            .collect()
    }

    /// The files holding documents other than the kustomization itself.
    fn manifest_files(&self) -> BTreeSet<String> {
        self.docs
            .iter()
            .filter(|(_, d)| !matches!(d["kind"].as_str(), Some("Kustomization" | "Component")))
            .map(|(file, _)| file.clone())
            .collect()
    }

    /// The file a document came from.
    fn file_of(&self, doc: &Yaml) -> &str {
        self.docs
            .iter()
            .find(|(_, d)| std::ptr::eq(d, doc))
            .map(|(file, _)| file.as_str())
            .unwrap()
    }
}

/// The mount at exactly `path` in `container`.
fn mount_at<'a>(container: &'a Yaml, path: &Path) -> &'a Yaml {
    list(&container["volumeMounts"])
        .iter()
        .find(|m| m["mountPath"].as_str().map(Path::new) == Some(path))
        .unwrap_or_else(|| {
            panic!(
                "{:?}: nothing is mounted at {}",
                container["name"],
                path.display()
            )
        })
}

/// The mount of `container` that holds `path` (the longest mount path
/// above it).
fn mount_holding<'a>(container: &'a Yaml, path: &Path) -> &'a Yaml {
    list(&container["volumeMounts"])
        .iter()
        .filter(|m| {
            m["mountPath"]
                .as_str()
                .is_some_and(|at| path.starts_with(at))
        })
        .max_by_key(|m| m["mountPath"].as_str().map_or(0, str::len))
        .unwrap_or_else(|| panic!("{:?}: no mount holds {}", container["name"], path.display()))
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

fn strings(value: &Yaml) -> Vec<&str> {
    list(value).iter().filter_map(Yaml::as_str).collect()
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

/// A file mode as Kubernetes reads it, written (as here) in octal with a
/// leading zero. Kubernetes parses YAML 1.1, where `0440` is octal;
/// yaml_rust2 follows YAML 1.2 and reads the digits `440` as decimal, so
/// they are read again as octal.
fn file_mode(value: &Yaml) -> u32 {
    let digits = int(value, "mode").to_string();
    u32::from_str_radix(&digits, 8)
        .unwrap_or_else(|_| panic!("mode {digits}: write file modes in octal, e.g. 0440"))
}

/// Whether a glob (`*` and `?`, neither crossing `/`) matches `path`.
fn glob_matches(pattern: &str, path: &str) -> bool {
    assert!(
        !pattern.contains(['[', '{']) && !pattern.contains("**"),
        "{pattern}: this check knows only * and ?"
    );
    fn matches(pattern: &[u8], path: &[u8]) -> bool {
        match (pattern.first(), path.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                matches(&pattern[1..], path)
                    || (path.first().is_some_and(|c| *c != b'/') && matches(pattern, &path[1..]))
            }
            (Some(b'?'), Some(c)) if *c != b'/' => matches(&pattern[1..], &path[1..]),
            (Some(p), Some(c)) if p == c => matches(&pattern[1..], &path[1..]),
            _ => false,
        }
    }
    matches(pattern.as_bytes(), path.as_bytes())
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

/// The keys of a Secret manifest (`data` and `stringData`).
fn secret_keys(secret: &Yaml) -> BTreeSet<String> {
    string_map(&secret["data"])
        .into_keys()
        .chain(string_map(&secret["stringData"]).into_keys())
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
    for kind in [
        "StatefulSet",
        "Service",
        "ConfigMap",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Secret",
        "Kustomization",
    ] {
        assert!(kinds.contains(kind), "no {kind} in deploy/kubernetes");
    }
    assert!(
        !kinds.contains("Deployment"),
        "the trail needs stable pods: a StatefulSet, not a Deployment"
    );
    assert!(
        manifests.of_kind("ConfigMap").len() >= 2,
        "config and policies ConfigMaps"
    );
    assert_eq!(
        manifests.of_kind("Service").len(),
        2,
        "the client Service and the headless one"
    );

    // Everything but the Secret example: applying that would replace the
    // operator's real Secret with empty values.
    let listed = manifests.kustomized_files("Kustomization");
    let secret = manifests.file_of(manifests.only("Secret"));
    assert_eq!(secret, SECRET_EXAMPLE);
    assert!(
        !listed.contains(secret),
        "kustomization.yaml must not list {secret}: an apply would overwrite the real Secret"
    );
    let mut files = manifests.manifest_files();
    files.remove(secret);
    assert_eq!(
        listed, files,
        "kustomization.yaml resources vs. the manifest files (all but {SECRET_EXAMPLE})"
    );
}

#[test]
fn the_optional_components_list_their_files_and_stay_out_of_the_base() {
    let base = Manifests::load();
    let listed = base.kustomized_files("Kustomization");
    assert!(
        base.of_kind("ServiceMonitor").is_empty(),
        "the base needs no CRDs: the ServiceMonitor is a component"
    );
    // Every subdirectory with a kustomization is a known component.
    let dirs: BTreeSet<String> = std::fs::read_dir(root().join(KUBERNETES))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.join("kustomization.yaml").is_file())
        .map(|p| format!("{KUBERNETES}/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    let expected: BTreeSet<String> = [MONITORING, VECTOR].map(str::to_owned).into();
    assert_eq!(dirs, expected, "the components under {KUBERNETES}");

    for dir in [MONITORING, VECTOR] {
        let component = Manifests::load_from(dir);
        let kustomization = component.only("Component");
        assert_eq!(
            kustomization["apiVersion"].as_str(),
            Some("kustomize.config.k8s.io/v1alpha1"),
            "{dir}: a kustomize Component"
        );
        assert_eq!(
            component.kustomized_files("Component"),
            component.manifest_files(),
            "{dir}/kustomization.yaml resources and patches vs. its files"
        );
        let name = dir.rsplit('/').next().unwrap();
        assert!(
            !listed
                .iter()
                .any(|r| r.trim_end_matches('/').ends_with(name)),
            "the base kustomization does not pull in {dir}"
        );
        // A patch changes something the base has.
        for patch in list(&kustomization["patches"]) {
            let file = text(&patch["path"], "patches[].path");
            let (_, doc) = component.docs.iter().find(|(f, _)| f == file).unwrap();
            let kind = text(&doc["kind"], "patch kind");
            let target = text(&doc["metadata"]["name"], "patch metadata.name");
            assert!(
                base.of_kind(kind)
                    .iter()
                    .any(|d| d["metadata"]["name"].as_str() == Some(target)),
                "{dir}/{file} patches {kind} {target}, which the base lacks"
            );
        }
    }
}

#[test]
fn the_statefulset_selects_its_own_pods_and_so_do_the_services_and_the_budget() {
    let manifests = Manifests::load();
    let workload = manifests.workload();
    let labels = manifests.pod_labels();
    let selector = string_map(&workload["spec"]["selector"]["matchLabels"]);
    assert!(
        selects(&selector, &labels),
        "StatefulSet selector {selector:?} vs. pod labels {labels:?}"
    );
    for service in manifests.of_kind("Service") {
        let selector = string_map(&service["spec"]["selector"]);
        assert!(
            selects(&selector, &labels),
            "Service {:?} selector {selector:?} vs. pod labels {labels:?}",
            service["metadata"]["name"]
        );
    }
    for budget in manifests.of_kind("PodDisruptionBudget") {
        let selector = string_map(&budget["spec"]["selector"]["matchLabels"]);
        assert!(
            selects(&selector, &labels),
            "PDB selector {selector:?} vs. pod labels {labels:?}"
        );
    }
    assert!(
        int(&workload["spec"]["replicas"], "replicas") >= 2,
        "more than one replica"
    );
}

#[test]
fn the_statefulset_is_governed_by_a_headless_service_and_rolls_one_pod_at_a_time() {
    let manifests = Manifests::load();
    let spec = &manifests.workload()["spec"];
    let headless = manifests.headless_service();
    assert_eq!(
        headless["spec"]["clusterIP"].as_str(),
        Some("None"),
        "serviceName must name a headless Service (clusterIP: None)"
    );
    let selector = string_map(&headless["spec"]["selector"]);
    assert!(
        selects(&selector, &manifests.pod_labels()),
        "the headless Service selects the StatefulSet's pods"
    );
    assert_eq!(
        spec["podManagementPolicy"].as_str(),
        Some("Parallel"),
        "replicas start and stop together"
    );
    assert_eq!(
        spec["updateStrategy"]["type"].as_str(),
        Some("RollingUpdate")
    );
    assert_ne!(
        manifests.client_service()["metadata"]["name"],
        headless["metadata"]["name"],
        "callers get a load-balanced Service"
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
    let (_, mount) = manifests.mount_at(trail_dir);
    assert_ne!(
        mount["readOnly"].as_bool(),
        Some(true),
        "the trail mount is writable"
    );
    assert!(
        mount["subPath"].is_badvalue(),
        "the trail is a whole volume"
    );
    let name = text(&mount["name"], "trail mount name");
    assert!(
        manifests.claim_template(name).is_some(),
        "the trail volume {name} is a volumeClaimTemplate: one PVC per replica"
    );
    // The volume belongs to the gateway's group, so uid 65532 may write.
    assert_eq!(
        manifests.pod_spec()["securityContext"]["fsGroup"].as_i64(),
        Some(NONROOT)
    );

    // And the trail leaves the pod: on stdout, or through a sidecar that
    // reads the same volume.
    let pod = manifests.pod_spec();
    let sidecar = list(&pod["containers"])
        .iter()
        .chain(list(&pod["initContainers"]))
        .filter(|c| c["name"].as_str() != Some(CONTAINER))
        .any(|c| {
            list(&c["volumeMounts"])
                .iter()
                .any(|m| m["name"].as_str() == Some(name))
        });
    assert!(
        config.audit.stdout || sidecar,
        "nothing ships the trail: set [audit] stdout = true or add a collector sidecar"
    );
}

#[test]
fn each_replica_keeps_its_trail_on_its_own_claim_through_restarts_and_scale_down() {
    let manifests = Manifests::load();
    let config = manifests.gateway_config();
    let (_, mount) = manifests.mount_at(config.audit.path.parent().unwrap());
    let name = text(&mount["name"], "trail mount name");
    assert!(
        manifests.pod_volume(name).is_none(),
        "a pod volume named {name} (an emptyDir) would replace the claim: the chain would die with the pod"
    );
    let claim = manifests.claim_template(name).unwrap();
    assert_eq!(
        strings(&claim["spec"]["accessModes"]),
        ["ReadWriteOnce"],
        "one pod writes one chain"
    );
    let storage = &claim["spec"]["resources"]["requests"]["storage"];
    assert!(!storage.is_badvalue(), "the trail claim requests storage");
    assert!(
        quantity(storage) >= 1024.0 * 1024.0 * 1024.0,
        "at least 1Gi for the trail, found {storage:?}"
    );
    let retention = &manifests.workload()["spec"]["persistentVolumeClaimRetentionPolicy"];
    for when in ["whenScaled", "whenDeleted"] {
        assert_ne!(
            retention[when].as_str(),
            Some("Delete"),
            "{when}: Delete would erase the chains; the claims must outlive the pods"
        );
    }
}

#[test]
fn the_replica_id_is_the_stable_pod_name() {
    let manifests = Manifests::load();
    let config = manifests.gateway_config();
    assert!(
        manifests.gateway_toml()["audit"].get("replica").is_none()
            && config.audit.replica.is_none(),
        "gateway.toml sets no [audit] replica: every pod would write one chain name"
    );
    assert!(
        list(&manifests.container()["env"])
            .iter()
            .all(|e| e["name"].as_str() != Some("HOSTNAME")),
        "HOSTNAME is the pod name; do not override it"
    );
    // The StatefulSet's pod names give distinct, stable trail file names.
    let stem = config.audit.path.file_stem().unwrap().to_str().unwrap();
    let start = humantime::parse_rfc3339("2026-12-03T00:00:00Z").unwrap();
    let names: BTreeSet<String> = ["erasure-gateway-0", "erasure-gateway-1"]
        .iter()
        .map(|pod| {
            let audit = AuditConfig {
                replica: Some((*pod).to_owned()),
                ..config.audit.clone()
            };
            let name = naming::file_name(stem, &audit.replica(), start);
            let parsed = TrailName::parse(&name).unwrap_or_else(|| panic!("{name}"));
            parsed.prefix.to_owned()
        })
        .collect();
    assert_eq!(names.len(), 2, "one chain per pod: {names:?}");
}

#[test]
fn the_secret_mount_holds_both_files_the_config_names() {
    let manifests = Manifests::load();
    let secret = manifests.only("Secret");
    assert_eq!(secret["metadata"]["name"].as_str(), Some(SECRET));
    let keys = secret_keys(secret);
    let readme = read(&format!("{KUBERNETES}/README.md"));
    assert!(
        readme.contains(&format!("kubectl create secret generic {SECRET}")),
        "README.md shows how to create {SECRET}"
    );
    for (section, key) in [
        ("admin", "token_sha256_file"),
        ("audit", "signing_key_file"),
    ] {
        let path = manifests
            .config_path(section, key)
            .unwrap_or_else(|| panic!("gateway.toml sets [{section}] {key}"));
        let (volume, mount) = manifests.mount_at(path.parent().unwrap());
        assert_eq!(
            volume["secret"]["secretName"].as_str(),
            Some(SECRET),
            "[{section}] {key} = {} lies in the {SECRET} mount",
            path.display()
        );
        assert_eq!(
            mount["readOnly"].as_bool(),
            Some(true),
            "the Secret mount is read-only"
        );
        assert!(
            mount["subPath"].is_badvalue(),
            "the Secret is a directory mount"
        );
        let file = path.file_name().unwrap().to_str().unwrap();
        let items = list(&volume["secret"]["items"]);
        let secret_key = if items.is_empty() {
            file
        } else {
            items
                .iter()
                .find(|i| i["path"].as_str() == Some(file))
                .map(|i| text(&i["key"], "items[].key"))
                .unwrap_or_else(|| panic!("the Secret volume's items put nothing at {file}"))
        };
        assert!(
            keys.contains(secret_key),
            "{SECRET_EXAMPLE} documents the key {secret_key} (has {keys:?})"
        );
        assert!(
            readme.contains(&format!("--from-file={secret_key}="))
                || readme.contains(&format!("--from-literal={secret_key}=")),
            "README.md's kubectl create secret sets {secret_key}"
        );
    }
    let (volume, _) = manifests.mount_at(
        manifests
            .config_path("audit", "signing_key_file")
            .unwrap()
            .parent()
            .unwrap(),
    );
    let mode = file_mode(&volume["secret"]["defaultMode"]);
    assert!(
        [0o400, 0o440].contains(&mode),
        "the Secret's files are {mode:o}: 0440 (group: fsGroup) or 0400"
    );
}

#[test]
fn the_secret_example_holds_no_secret() {
    let manifests = Manifests::load();
    let secret = manifests.only("Secret");
    let values = string_map(&secret["data"])
        .into_iter()
        .chain(string_map(&secret["stringData"]));
    for (key, value) in values {
        assert!(
            value.trim().is_empty(),
            "{SECRET_EXAMPLE}: {key} must stay empty; operators create the real Secret"
        );
    }
}

#[test]
fn checkpoints_are_signed_with_the_mounted_key() {
    let manifests = Manifests::load();
    let config = manifests.gateway_config();
    assert!(
        config.audit.checkpoint_every > 0,
        "signed checkpoints make a deleted or rewritten chain detectable"
    );
    let key = config
        .audit
        .signing_key_file
        .expect("[audit] signing_key_file");
    assert_eq!(
        Some(key),
        manifests.config_path("audit", "signing_key_file"),
        "the parser keeps the key path as written"
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
    let service = manifests.client_service();
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

/// A NetworkPolicy rule's ports as numbers; `None`: every port.
fn rule_ports(manifests: &Manifests, rule: &Yaml) -> Option<Vec<(i64, i64)>> {
    let ports = list(&rule["ports"]);
    if ports.is_empty() {
        return None;
    }
    Some(
        ports
            .iter()
            .map(|p| {
                if p["port"].is_badvalue() {
                    return (0, 65535);
                }
                let first = manifests.container_port(&p["port"]);
                (first, p["endPort"].as_i64().unwrap_or(first))
            })
            .collect(),
    )
}

fn rule_allows_port(manifests: &Manifests, rule: &Yaml, port: i64) -> bool {
    rule_ports(manifests, rule).is_none_or(|ranges| {
        ranges
            .iter()
            .any(|(first, last)| (*first..=*last).contains(&port))
    })
}

#[test]
fn the_network_policy_opens_the_proxy_and_keeps_the_admin_port_to_monitoring() {
    let manifests = Manifests::load();
    let config = manifests.gateway_config();
    let policy = manifests.only("NetworkPolicy");
    let selector = string_map(&policy["spec"]["podSelector"]["matchLabels"]);
    assert!(
        selects(&selector, &manifests.pod_labels()),
        "the NetworkPolicy selects the gateway's pods"
    );
    assert!(
        strings(&policy["spec"]["policyTypes"]).contains(&"Ingress"),
        "the policy restricts ingress"
    );
    let rules = list(&policy["spec"]["ingress"]);
    let proxy = i64::from(config.proxy.listen.port());
    let admin = i64::from(config.admin.listen.port());

    // 8080 from the whole cluster: no `from`, or an empty namespaceSelector.
    let cluster_wide = |rule: &Yaml| {
        let from = list(&rule["from"]);
        from.is_empty()
            || from.iter().any(|peer| {
                peer["podSelector"].is_badvalue()
                    && peer["namespaceSelector"]
                        .as_hash()
                        .is_some_and(|h| h.is_empty())
            })
    };
    assert!(
        rules
            .iter()
            .any(|r| rule_allows_port(&manifests, r, proxy) && cluster_wide(r)),
        "port {proxy} is open to the cluster"
    );

    // 9090 only from the monitoring namespace.
    let monitoring: BTreeMap<String, String> = [(
        "kubernetes.io/metadata.name".to_owned(),
        MONITORING_NAMESPACE.to_owned(),
    )]
    .into();
    let admin_rules: Vec<&Yaml> = rules
        .iter()
        .filter(|r| rule_allows_port(&manifests, r, admin))
        .collect();
    assert!(!admin_rules.is_empty(), "Prometheus may reach port {admin}");
    for rule in admin_rules {
        let from = list(&rule["from"]);
        assert!(
            !from.is_empty(),
            "a rule opens port {admin} to everyone: {rule:?}"
        );
        for peer in from {
            let namespaces = &peer["namespaceSelector"];
            assert!(
                peer["ipBlock"].is_badvalue()
                    && namespaces["matchExpressions"].is_badvalue()
                    && string_map(&namespaces["matchLabels"]) == monitoring,
                "port {admin} is for the {MONITORING_NAMESPACE} namespace only, found {peer:?}"
            );
        }
    }
}

#[test]
fn the_service_monitor_scrapes_metrics_on_the_headless_service_admin_port() {
    let base = Manifests::load();
    let config = base.gateway_config();
    let monitoring = Manifests::load_from(MONITORING);
    let monitor = monitoring.only("ServiceMonitor");
    assert_eq!(
        monitor["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    let selector = string_map(&monitor["spec"]["selector"]["matchLabels"]);
    let headless = base.headless_service();
    assert!(
        selects(&selector, &string_map(&headless["metadata"]["labels"])),
        "the ServiceMonitor {selector:?} selects the headless Service's labels"
    );
    assert!(
        !selects(
            &selector,
            &string_map(&base.client_service()["metadata"]["labels"])
        ),
        "not the client Service, which has no admin port"
    );
    let endpoints = list(&monitor["spec"]["endpoints"]);
    assert!(!endpoints.is_empty(), "the ServiceMonitor has endpoints");
    for endpoint in endpoints {
        let name = text(&endpoint["port"], "endpoints[].port");
        let port = list(&headless["spec"]["ports"])
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("the headless Service has no port named {name}"));
        assert_eq!(
            base.service_target(port),
            i64::from(config.admin.listen.port()),
            "{name} reaches the admin listener"
        );
        assert_eq!(endpoint["path"].as_str(), Some("/metrics"));
    }
}

// ---- The Vector sidecar example (deploy/kubernetes/vector) ---------------------

/// The Vector component: the StatefulSet patch and the ConfigMap.
struct VectorExample {
    manifests: Manifests,
}

impl VectorExample {
    fn load() -> Self {
        Self {
            manifests: Manifests::load_from(VECTOR),
        }
    }

    fn patch(&self) -> &Yaml {
        self.manifests.only("StatefulSet")
    }

    /// The one container the patch adds: not the gateway.
    fn sidecar(&self) -> &Yaml {
        let pod = &self.patch()["spec"]["template"]["spec"];
        let added: Vec<&Yaml> = list(&pod["initContainers"])
            .iter()
            .chain(list(&pod["containers"]))
            .filter(|c| c["name"].as_str() != Some(CONTAINER))
            .collect();
        assert_eq!(added.len(), 1, "the patch adds one sidecar");
        added[0]
    }

    fn volume(&self, name: &str) -> &Yaml {
        list(&self.patch()["spec"]["template"]["spec"]["volumes"])
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("the patch adds no volume named {name}"))
    }

    /// The file the sidecar's `--config` names.
    fn config_file(&self) -> PathBuf {
        let args = strings(&self.sidecar()["args"]);
        let at = args
            .iter()
            .position(|a| *a == "--config" || *a == "-c")
            .expect("vector --config");
        PathBuf::from(args[at + 1])
    }

    /// `vector.yaml`, from the ConfigMap mounted where `--config` looks.
    fn config(&self) -> Yaml {
        let file = self.config_file();
        let mount = mount_holding(self.sidecar(), &file);
        let volume = self.volume(text(&mount["name"], "config mount name"));
        let map = self
            .manifests
            .config_map(text(&volume["configMap"]["name"], "configMap.name"));
        let relative = file
            .strip_prefix(text(&mount["mountPath"], "mountPath"))
            .unwrap();
        let key = relative.to_str().unwrap();
        let yaml = text(&map["data"][key], key);
        YamlLoader::load_from_str(yaml)
            .unwrap_or_else(|e| panic!("{key} is not valid YAML: {e}"))
            .remove(0)
    }
}

#[test]
fn the_vector_example_tails_every_trail_file_the_gateway_writes() {
    let config = Manifests::load().gateway_config();
    let vector = VectorExample::load().config();
    let sources = vector["sources"].as_hash().expect("vector sources");
    let files: Vec<(&str, &Yaml)> = sources
        .iter()
        .filter(|(_, s)| s["type"].as_str() == Some("file"))
        .map(|(id, s)| (text(id, "source id"), s))
        .collect();
    assert_eq!(files.len(), 1, "one file source");
    let (source_id, source) = files[0];
    let include = strings(&source["include"]);
    let exclude = strings(&source["exclude"]);

    // The names the gateway makes for its pods, and the legacy ones its
    // readers still recognise.
    let trail_dir = config.audit.path.parent().unwrap();
    let stem = config.audit.path.file_stem().unwrap().to_str().unwrap();
    let start = humantime::parse_rfc3339("2026-12-03T00:00:00Z").unwrap();
    let replica = AuditConfig {
        replica: Some("erasure-gateway-0".to_owned()),
        ..config.audit.clone()
    }
    .replica();
    for name in [
        naming::file_name(stem, &replica, start),
        format!("{stem}-{replica}-20261203T000000Z.jsonl"),
    ] {
        assert!(TrailName::parse(&name).is_some(), "{name} is a trail name");
        let path = trail_dir.join(&name);
        let path = path.to_str().unwrap();
        assert!(
            include.iter().any(|glob| glob_matches(glob, path)),
            "the file source's include {include:?} misses {path}"
        );
        assert!(
            !exclude.iter().any(|glob| glob_matches(glob, path)),
            "the file source excludes {path}"
        );
    }
    assert_eq!(
        source["read_from"].as_str(),
        Some("beginning"),
        "a new sidecar ships the trail from its first record"
    );

    // file → a remap that parses the JSON record → sinks, each line shipped
    // as written.
    let transforms = vector["transforms"].as_hash().expect("vector transforms");
    let sinks = vector["sinks"].as_hash().expect("vector sinks");
    let defined: BTreeSet<&str> = sources
        .keys()
        .chain(transforms.keys())
        .map(|id| text(id, "component id"))
        .collect();
    for (id, component) in transforms.iter().chain(sinks.iter()) {
        for input in strings(&component["inputs"]) {
            let input = input.strip_suffix(".dropped").unwrap_or(input);
            assert!(defined.contains(input), "{id:?}: no component {input}");
        }
    }
    let parser = transforms
        .iter()
        .find(|(_, t)| {
            t["type"].as_str() == Some("remap")
                && strings(&t["inputs"]).contains(&source_id)
                && t["source"]
                    .as_str()
                    .is_some_and(|s| s.contains("parse_json"))
        })
        .map(|(id, _)| text(id, "transform id"))
        .expect("a remap transform parses the file source's lines as JSON");
    let shipping: Vec<&Yaml> = sinks
        .values()
        .filter(|s| strings(&s["inputs"]).contains(&parser))
        .collect();
    assert!(!shipping.is_empty(), "a sink takes the parsed records");
    for sink in shipping {
        assert!(
            ["http", "aws_s3"].contains(&text(&sink["type"], "sink type")),
            "the example ships to http or S3"
        );
    }
    for (id, sink) in sinks {
        assert_eq!(
            sink["encoding"]["codec"].as_str(),
            Some("text"),
            "{id:?}: the line exactly as written (a re-serialised record may not verify)"
        );
    }
    let data_dir = text(&vector["data_dir"], "data_dir");
    assert!(
        !Path::new(data_dir).starts_with(trail_dir),
        "Vector keeps its read positions outside the trail"
    );
}

#[test]
fn the_vector_sidecar_reads_the_trail_read_only_and_runs_unprivileged() {
    let base = Manifests::load();
    let config = base.gateway_config();
    let example = VectorExample::load();
    let patch = example.patch();
    assert_eq!(
        patch["metadata"]["name"],
        base.workload()["metadata"]["name"],
        "the patch adds the sidecar to the gateway's StatefulSet"
    );
    let sidecar = example.sidecar();
    let pod = &patch["spec"]["template"]["spec"];
    if list(&pod["initContainers"])
        .iter()
        .any(|c| std::ptr::eq(c, sidecar))
    {
        assert_eq!(
            sidecar["restartPolicy"].as_str(),
            Some("Always"),
            "an init container that ships must be a native sidecar"
        );
    }

    // The pod's trail claim, read-only; not the Secret.
    let trail_dir = config.audit.path.parent().unwrap();
    let (_, gateway_mount) = base.mount_at(trail_dir);
    let mount = mount_at(sidecar, trail_dir);
    assert_eq!(
        mount["name"], gateway_mount["name"],
        "the sidecar reads the gateway's trail volume"
    );
    assert_eq!(
        mount["readOnly"].as_bool(),
        Some(true),
        "the sidecar cannot alter the trail"
    );
    for mount in list(&sidecar["volumeMounts"]) {
        let name = text(&mount["name"], "volumeMounts[].name");
        assert!(
            base.pod_volume(name)
                .is_none_or(|v| v["secret"].is_badvalue()),
            "the sidecar mounts no Secret of the gateway ({name})"
        );
    }

    // Its read positions on its own writable volume.
    let vector = example.config();
    let data_dir = Path::new(text(&vector["data_dir"], "data_dir"));
    let data = mount_holding(sidecar, data_dir);
    assert_ne!(
        data["readOnly"].as_bool(),
        Some(true),
        "data_dir is writable"
    );
    let volume = example.volume(text(&data["name"], "data mount name"));
    assert!(
        !volume["emptyDir"].is_badvalue(),
        "data_dir is the sidecar's emptyDir"
    );

    // Non-root (the gateway's uid: the trail files are 0600), read-only
    // root filesystem, nothing escalates.
    let security = &sidecar["securityContext"];
    assert_eq!(security["runAsNonRoot"].as_bool(), Some(true));
    assert!(
        security["runAsUser"].as_i64() == Some(NONROOT) || config.audit.group_read,
        "the trail files are 0600: run as uid {NONROOT}, or set [audit] group_read"
    );
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_ne!(security["privileged"].as_bool(), Some(true));
    assert!(
        strings(&security["capabilities"]["drop"]).contains(&"ALL"),
        "capabilities dropped"
    );
    for resource in ["cpu", "memory"] {
        let request = &sidecar["resources"]["requests"][resource];
        let limit = &sidecar["resources"]["limits"][resource];
        assert!(
            !request.is_badvalue() && !limit.is_badvalue(),
            "the sidecar requests and limits {resource}"
        );
        assert!(
            quantity(request) <= quantity(limit),
            "{resource}: request ≤ limit"
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
    let text = read("deploy/container.toml");
    // Reachable from other hosts, the admin listener needs a token: the
    // image reads its hash from a mounted secret, and will not start
    // without one.
    let secret = "/run/secrets/admin-token.sha256";
    assert!(text.contains(&format!("token_sha256_file = \"{secret}\"")));
    let unmounted = Config::parse(&text, Path::new("deploy/container.toml"))
        .unwrap_err()
        .to_string();
    assert!(unmounted.contains("admin.token_sha256_file"), "{unmounted}");
    let dir = tempfile::tempdir().unwrap();
    let mounted = dir.path().join("admin-token.sha256");
    std::fs::write(&mounted, format!("{}\n", "ab".repeat(32))).unwrap();
    let config = Config::parse(
        &text.replace(secret, &mounted.display().to_string()),
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

/// The jemalloc page decay of `.cargo/config.toml` is built into the binary
/// (and the Docker build stage copies `.cargo/`).
#[cfg(feature = "jemalloc")]
#[test]
fn the_binary_hands_unused_pages_back_after_a_second() {
    let out = crate::support::gateway_binary()
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stats = String::from_utf8_lossy(&out.stderr);
    for setting in ["opt.dirty_decay_ms: 1000", "opt.muzzy_decay_ms: 0"] {
        assert!(stats.contains(setting), "{setting} in:\n{stats}");
    }
    assert!(read("Dockerfile").contains("COPY .cargo ./.cargo"));
}
