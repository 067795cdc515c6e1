//! `wharf cri`'s stats, metrics and container events, through a tonic
//! client on a daemon of the test's own (root, run root, socket), on real
//! pods and containers made by the wharf CLI with the CRI label (until the
//! sandbox and container RPCs make them): CPU that moves and a
//! `usage_nano_cores` above zero for a busy container, a working set above
//! what a container holds in memory, the process count, a writable layer
//! that grows, sandbox network bytes after traffic to the pod's IP from the
//! host, filters and NotFound, the cAdvisor-named metrics; a
//! CONTAINER_STOPPED_EVENT for a container that exits by itself. Each test
//! ends with a leak check.

use k8s_cri::v1 as cri;
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};
use wharf_tests::cri::CriDaemon;
use wharf_tests::{busybox_tar, privileged};

type Client = cri::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

const CRI: &str = "io.wharf.cri=true";

/// A daemon, a client on its socket, and the wharf CLI on its store.
struct Env {
    d: CriDaemon,
    rt: tokio::runtime::Runtime,
    client: Client,
    nets: Vec<String>,
    _tmp: tempfile::TempDir,
}

impl Env {
    fn start() -> Env {
        let tmp = tempfile::Builder::new().prefix("wharf-cristats-").tempdir().unwrap();
        let net_d = tmp.path().join("net.d");
        std::fs::create_dir(&net_d).unwrap();
        let config = format!("[cni]\nconf_dir = \"{}\"\nbin_dirs = [\"/usr/lib/cni\"]\n", net_d.display());
        let d = CriDaemon::start(tmp.path(), &config);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let path = d.socket.clone();
        let ch = rt
            .block_on(tonic::transport::Endpoint::try_from("http://[::]:50051").unwrap().connect_with_connector(
                tower::service_fn(move |_| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                            tokio::net::UnixStream::connect(path).await?,
                        ))
                    }
                }),
            ))
            .unwrap();
        let env = Env { d, rt, client: Client::new(ch), nets: Vec::new(), _tmp: tmp };
        let tar = busybox_tar(env._tmp.path());
        env.ok(&["import", &tar.display().to_string(), "bb"]);
        env
    }

    fn wharf(&self, args: &[&str]) -> std::process::Output {
        Command::new(wharf_tests::bin("wharf"))
            .arg("--root")
            .arg(&self.d.root)
            .arg("--run-root")
            .arg(&self.d.run_root)
            .args(args)
            .env("DOCKER_CONFIG", &self.d.docker_config)
            .output()
            .expect("spawn wharf")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.wharf(args);
        assert!(o.status.success(), "wharf {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn network(&mut self, tag: &str) -> String {
        let name = format!("{tag}-{}", std::process::id());
        self.ok(&["network", "create", &name]);
        self.nets.push(name.clone());
        name
    }

    fn call<T>(&self, f: impl AsyncFnOnce(Client) -> T) -> T {
        self.rt.block_on(f(self.client.clone()))
    }

    fn container_stats(&self, id: &str) -> Result<cri::ContainerStats, tonic::Status> {
        let req = cri::ContainerStatsRequest { container_id: id.into() };
        self.call(async |mut c| c.container_stats(req).await).map(|r| r.into_inner().stats.expect("stats"))
    }

    fn list_container_stats(&self, f: cri::ContainerStatsFilter) -> Vec<cri::ContainerStats> {
        let req = cri::ListContainerStatsRequest { filter: Some(f) };
        self.call(async |mut c| c.list_container_stats(req).await).unwrap().into_inner().stats
    }

    fn pod_stats(&self, id: &str) -> Result<cri::PodSandboxStats, tonic::Status> {
        let req = cri::PodSandboxStatsRequest { pod_sandbox_id: id.into() };
        self.call(async |mut c| c.pod_sandbox_stats(req).await).map(|r| r.into_inner().stats.expect("stats"))
    }

    fn list_pod_stats(&self, f: cri::PodSandboxStatsFilter) -> Vec<cri::PodSandboxStats> {
        let req = cri::ListPodSandboxStatsRequest { filter: Some(f) };
        self.call(async |mut c| c.list_pod_sandbox_stats(req).await).unwrap().into_inner().stats
    }

    /// Removes every pod and network and checks that nothing is left.
    fn finish(mut self) {
        let pods = self.ok(&["pod", "ls", "-q", "--no-trunc"]);
        let pods: Vec<&str> = pods.lines().filter(|l| !l.is_empty()).collect();
        for p in &pods {
            self.ok(&["pod", "rm", "-f", p]);
        }
        for n in std::mem::take(&mut self.nets) {
            self.ok(&["network", "rm", &n]);
        }
        let leaks = wharf_tests::leaks::network_leaks(&self.d.root, &self.d.run_root, &[], "");
        assert!(leaks.is_empty(), "{leaks:?}");
        for p in &pods {
            let left = wharf_tests::leaks::cgroups_named("/wharf", &format!("pod-{p}"));
            assert!(left.is_empty(), "cgroups of pod {p} left: {left:?}");
        }
        let dir = self.d.dir.clone();
        drop(self);
        assert!(wharf_tests::mounts_under(&dir).is_empty(), "mounts left: {:?}", wharf_tests::mounts_under(&dir));
        let left = wharf_tests::leaks::processes_mentioning(&dir.display().to_string());
        assert!(left.is_empty(), "processes left: {left:?}");
    }
}

impl Drop for Env {
    /// Pods and networks go with the test, whatever it did.
    fn drop(&mut self) {
        if let Ok(o) = std::str::from_utf8(&self.wharf(&["pod", "ls", "-q"]).stdout).map(str::to_string) {
            for p in o.lines().filter(|l| !l.is_empty()) {
                let _ = self.wharf(&["pod", "rm", "-f", p]);
            }
        }
        for n in std::mem::take(&mut self.nets) {
            let _ = self.wharf(&["network", "rm", &n]);
        }
    }
}

fn val(v: &Option<cri::UInt64Value>) -> u64 {
    v.as_ref().expect("a value").value
}

fn sel(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn ids(stats: &[cri::ContainerStats]) -> Vec<String> {
    let mut v: Vec<String> = stats.iter().map(|s| s.attributes.as_ref().unwrap().id.clone()).collect();
    v.sort();
    v
}

/// Polls `f` until it gives `Some`, for up to 20 s.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A few TCP connection attempts from the host to `ip`: SYNs in, RSTs out
/// of the pod's eth0 (loopback traffic would not count).
fn traffic_to(ip: &str) {
    for port in [9, 10, 11, 12, 13] {
        let addr = std::net::SocketAddr::new(ip.parse().unwrap(), port);
        let _ = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    }
}

#[test]
fn stats_move_filters_and_metrics() {
    if !privileged("stats_move_filters_and_metrics") {
        return;
    }
    let mut e = Env::start();
    let net = e.network("cs-stats");
    let pod = e.ok(&["pod", "create", "--name", "cs-web", "--network", &net, "--label", CRI, "--label", "app=web"]);
    // A pod of the CLI's: never shown through CRI.
    let cli_pod = e.ok(&["pod", "create", "--name", "cs-cli", "--network", &net]);
    let busy_cmd = "sleep 1000 & sleep 1000 & while :; do :; done";
    let busy = e.ok(&[
        "run",
        "-d",
        "--pod",
        &pod,
        "--name",
        "busy",
        "--label",
        CRI,
        "--label",
        "role=busy",
        "bb",
        "sh",
        "-c",
        busy_cmd,
    ]);
    let mem_cmd = "dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null; sleep 1000";
    let mem = e.ok(&["run", "-d", "--pod", &pod, "--name", "mem", "--label", CRI, "bb", "sh", "-c", mem_cmd]);
    let other = e.ok(&["run", "-d", "--pod", &cli_pod, "--name", "other", "bb", "sleep", "1000"]);

    // CPU: it moves, and the rate since the housekeeping sample is real.
    std::thread::sleep(Duration::from_millis(2500));
    let a = e.container_stats(&busy).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let b = e.container_stats(&busy).unwrap();
    let (ca, cb) = (a.cpu.unwrap(), b.cpu.unwrap());
    let (na, nb) = (val(&ca.usage_core_nano_seconds), val(&cb.usage_core_nano_seconds));
    assert!(nb > na + 100_000_000, "a busy loop used {} ns of CPU in 1 s", nb - na);
    assert!(cb.timestamp > ca.timestamp);
    let cores = val(&cb.usage_nano_cores);
    assert!(cores > 100_000_000, "usage_nano_cores of a busy loop: {cores}");
    assert_eq!(b.attributes.as_ref().unwrap().labels, sel(&[("role", "busy")]), "labels without io.wharf.cri");
    assert_eq!(b.attributes.as_ref().unwrap().metadata.as_ref().unwrap().name, "busy");

    // Memory: the 40 MiB in /dev/shm are in the working set.
    let m = eventually("the working set of mem", || {
        let m = e.container_stats(&mem).unwrap().memory.unwrap();
        (val(&m.working_set_bytes) >= 40 << 20).then_some(m)
    });
    assert!(val(&m.usage_bytes) >= val(&m.working_set_bytes), "{m:?}");
    assert!(val(&m.page_faults) > 0, "{m:?}");
    assert!(m.timestamp > 0);

    // Writable layer: grows by the file written, and by its inode.
    let layer = |id: &str| e.container_stats(id).unwrap().writable_layer.unwrap();
    let before = layer(&mem);
    assert_eq!(before.fs_id.as_ref().unwrap().mountpoint, e.d.root.display().to_string());
    e.ok(&["exec", "mem", "dd", "if=/dev/urandom", "of=/grown", "bs=1M", "count=5"]);
    let after = layer(&mem);
    assert!(val(&after.used_bytes) >= val(&before.used_bytes) + (5 << 20), "{before:?} → {after:?}");
    assert!(val(&after.inodes_used) > val(&before.inodes_used), "{before:?} → {after:?}");

    // Filters, and only the kubelet's containers.
    let all = e.list_container_stats(Default::default());
    let mut want = vec![busy.clone(), mem.clone()];
    want.sort();
    assert_eq!(ids(&all), want);
    let f = |id: &str, pod: &str, labels: &[(&str, &str)]| cri::ContainerStatsFilter {
        id: id.into(),
        pod_sandbox_id: pod.into(),
        label_selector: sel(labels),
    };
    assert_eq!(ids(&e.list_container_stats(f(&busy, "", &[]))), [busy.as_str()]);
    assert_eq!(ids(&e.list_container_stats(f(&mem[..12], "", &[]))), [mem.as_str()], "an ID prefix");
    assert_eq!(ids(&e.list_container_stats(f("", &pod, &[]))), want);
    assert!(e.list_container_stats(f("", &cli_pod, &[])).is_empty());
    assert_eq!(ids(&e.list_container_stats(f("", "", &[("role", "busy")]))), [busy.as_str()]);
    assert!(e.list_container_stats(f("", "", &[("role", "idle")])).is_empty());
    assert!(e.list_container_stats(f(&other, "", &[])).is_empty());
    for id in [other.as_str(), "0123456789abcdef", &cli_pod] {
        let err = e.container_stats(id).unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound, "{id}: {err:?}");
    }

    // The sandbox: its cgroup's totals, its processes, its network.
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["pod", "inspect", &pod])).unwrap();
    let ip = v[0]["InfraConfig"]["IP"].as_str().expect("the pod's IP").to_string();
    let rx = |s: &cri::PodSandboxStats| {
        let n = s.linux.as_ref().unwrap().network.as_ref().expect("network stats");
        let d = n.default_interface.as_ref().unwrap();
        assert_eq!(d.name, "eth0");
        (val(&d.rx_bytes), val(&d.tx_bytes))
    };
    let s1 = e.pod_stats(&pod).unwrap();
    traffic_to(&ip);
    let s2 = e.pod_stats(&pod).unwrap();
    let ((rx1, tx1), (rx2, tx2)) = (rx(&s1), rx(&s2));
    assert!(rx2 > rx1 && tx2 > tx1, "eth0 of {ip}: rx {rx1} → {rx2}, tx {tx1} → {tx2}");
    let l = s2.linux.as_ref().unwrap();
    assert!(val(&l.cpu.as_ref().unwrap().usage_nano_cores) > 100_000_000, "{:?}", l.cpu);
    assert!(val(&l.memory.as_ref().unwrap().working_set_bytes) >= 40 << 20, "{:?}", l.memory);
    // busy's sh and two sleeps, mem's sleep (sh execs the last command), the infra.
    assert!(val(&l.process.as_ref().unwrap().process_count) >= 5, "{:?}", l.process);
    assert_eq!(ids(&l.containers), want);
    let attrs = s2.attributes.as_ref().unwrap();
    assert_eq!((attrs.id.as_str(), &attrs.labels), (pod.as_str(), &sel(&[("app", "web")])));

    let pf =
        |id: &str, labels: &[(&str, &str)]| cri::PodSandboxStatsFilter { id: id.into(), label_selector: sel(labels) };
    let pod_ids = |v: Vec<cri::PodSandboxStats>| v.into_iter().map(|s| s.attributes.unwrap().id).collect::<Vec<_>>();
    assert_eq!(pod_ids(e.list_pod_stats(pf("", &[]))), [pod.as_str()]);
    assert_eq!(pod_ids(e.list_pod_stats(pf(&pod[..12], &[]))), [pod.as_str()]);
    assert_eq!(pod_ids(e.list_pod_stats(pf("", &[("app", "web")]))), [pod.as_str()]);
    assert!(e.list_pod_stats(pf("", &[("app", "db")])).is_empty());
    assert!(e.list_pod_stats(pf(&cli_pod, &[])).is_empty());
    assert_eq!(e.pod_stats(&cli_pod).unwrap_err().code(), tonic::Code::NotFound);
    assert_eq!(e.pod_stats("fedcba9876543210").unwrap_err().code(), tonic::Code::NotFound);

    metrics(&e, &pod, &mem, &busy);
    // The real crictl reads the same answers.
    let st = e.d.crictl_json(&["stats"]);
    let mut got: Vec<&str> =
        st["stats"].as_array().unwrap().iter().filter_map(|s| s["attributes"]["id"].as_str()).collect();
    got.sort();
    assert_eq!(got, want, "{st}");
    let sp = e.d.crictl_json(&["statsp"]);
    assert_eq!(sp["stats"][0]["attributes"]["id"], pod.as_str(), "{sp}");
    assert_eq!(sp["stats"][0]["linux"]["network"]["defaultInterface"]["name"], "eth0", "{sp}");
    e.finish();
}

/// ListMetricDescriptors names containerd's metrics; ListPodSandboxMetrics
/// fills them with the same figures as the stats.
fn metrics(e: &Env, pod: &str, mem: &str, busy: &str) {
    let descs = e
        .call(async |mut c| c.list_metric_descriptors(cri::ListMetricDescriptorsRequest {}).await)
        .unwrap()
        .into_inner()
        .descriptors;
    let names: Vec<&str> = descs.iter().map(|d| d.name.as_str()).collect();
    for n in [
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "container_memory_usage_bytes",
        "container_network_receive_bytes_total",
        "container_network_transmit_bytes_total",
        "container_fs_usage_bytes",
    ] {
        assert!(names.contains(&n), "{n} not in {names:?}");
    }
    let got = e
        .call(async |mut c| c.list_pod_sandbox_metrics(cri::ListPodSandboxMetricsRequest {}).await)
        .unwrap()
        .into_inner()
        .pod_metrics;
    assert_eq!(got.iter().map(|p| p.pod_sandbox_id.as_str()).collect::<Vec<_>>(), [pod]);
    let p = &got[0];
    let find = |list: &[cri::Metric], name: &str| {
        list.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no {name} in {list:?}")).clone()
    };
    let rx = find(&p.metrics, "container_network_receive_bytes_total");
    assert!(val(&rx.value) > 0 && rx.label_values.last().map(String::as_str) == Some("eth0"), "{rx:?}");
    assert_eq!(rx.metric_type, cri::MetricType::Counter as i32);
    let c = p.container_metrics.iter().find(|c| c.container_id == mem).expect("mem's metrics");
    let ws = find(&c.metrics, "container_memory_working_set_bytes");
    assert!(val(&ws.value) >= 40 << 20, "{ws:?}");
    assert_eq!(ws.metric_type, cri::MetricType::Gauge as i32);
    assert_eq!(ws.label_values[2..4], ["mem".to_string(), mem.to_string()], "{ws:?}");
    let desc = descs.iter().find(|d| d.name == ws.name).unwrap();
    assert_eq!(desc.label_keys.len(), ws.label_values.len(), "{desc:?} {ws:?}");
    assert!(val(&find(&c.metrics, "container_fs_usage_bytes").value) >= 5 << 20);
    // The process count: busy's sh and its two sleeps.
    let c = p.container_metrics.iter().find(|c| c.container_id == busy).expect("busy's metrics");
    assert_eq!(val(&find(&c.metrics, "container_processes").value), 3);
    assert!(val(&find(&c.metrics, "container_cpu_usage_seconds_total").value) >= 1);
}

#[test]
fn a_container_that_exits_by_itself_makes_a_stopped_event() {
    if !privileged("a_container_that_exits_by_itself_makes_a_stopped_event") {
        return;
    }
    let e = Env::start();
    let pod = e.ok(&["pod", "create", "--name", "cs-ev", "--network", "none", "--label", CRI]);
    let stream = e.call(async |mut c| c.get_container_events(cri::GetEventsRequest {}).await).unwrap().into_inner();
    let id =
        e.ok(&["run", "-d", "--pod", &pod, "--name", "short", "--label", CRI, "bb", "sh", "-c", "sleep 3; exit 3"]);
    let t0 = Instant::now();
    let ev = e.rt.block_on(async {
        let mut stream = stream;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(20), stream.message()).await;
            let ev = next.expect("no event within 20 s").expect("stream").expect("stream open");
            if ev.container_id == id {
                return ev;
            }
        }
    });
    assert_eq!(ev.container_event_type, cri::ContainerEventType::ContainerStoppedEvent as i32, "{ev:?}");
    assert!(t0.elapsed() >= Duration::from_secs(2), "the event came before the exit: {:?}", t0.elapsed());
    assert!(ev.created_at > 0);
    assert_eq!(ev.pod_sandbox_status.as_ref().map(|p| p.id.as_str()), Some(pod.as_str()), "{ev:?}");
    let st = ev.containers_statuses.iter().find(|s| s.id == id).expect("the container's status");
    assert_eq!((st.state, st.exit_code, st.reason.as_str()), (cri::ContainerState::ContainerExited as i32, 3, "Error"));
    assert!(st.finished_at > st.started_at && st.started_at > 0, "{st:?}");
    e.finish();
}
