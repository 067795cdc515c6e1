//! `wharf kube play|down|generate` against the real engine: pods of
//! busybox (`bb`, imported), on a CNI bridge network of the test's own;
//! every test ends with `kube down` and the engine's leak check (mounts,
//! processes, cgroups, netns, veths, iptables rules) plus an empty
//! `<root>/kube`. The bad-manifest test needs no root.

use std::path::Path;
use wharf_tests::engine::{stderr, stdout, unique, wait_for, Engine};
use wharf_tests::leaks::{cgroups_named, entries};
use wharf_tests::{privileged, TestStore};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// An engine with a network of the test's own.
fn setup(tag: &str) -> (Engine, String) {
    let e = Engine::new();
    let net = unique(tag);
    e.ok(&["network", "create", &net]);
    (e, net)
}

/// `kube down`, then nothing left: containers, pods (dirs, pinned
/// namespaces, cgroups), veths on the test's bridge, mounts, processes,
/// iptables rules; then the network removed.
fn finish(e: &Engine, net: &str, files: &[&str]) {
    let pods: Vec<String> = e.ok(&["pod", "ls", "-q", "--no-trunc"]).lines().map(String::from).collect();
    let mut a = vec!["kube", "down", "--force"];
    a.extend_from_slice(files);
    e.ok(&a);
    assert_eq!(e.ok(&["ps", "-a", "-q"]), "", "containers left");
    assert_eq!(e.ok(&["pod", "ls", "-q"]), "", "pods left");
    e.assert_no_leaks();
    for id in &pods {
        assert_eq!(cgroups_named("/wharf", &format!("pod-{id}")), Vec::<std::path::PathBuf>::new(), "pod cgroups left");
    }
    let run = e.run_root();
    for d in [e.s.root.join("kube/pods"), e.s.root.join("pods"), run.join("pods")] {
        assert_eq!(entries(&d), Vec::<String>::new(), "{} is not empty", d.display());
    }
    e.ok(&["network", "rm", net]);
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "", "kube down --force removes the claims' volumes");
}

fn restart_count(e: &Engine, name: &str) -> u64 {
    e.inspect(name, "{{.RestartCount}}").parse().unwrap_or(0)
}

const TWO: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data:
  app.conf: "color=blue\n"
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {password: aHVudGVyMg==}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: NAME-data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: NAME, labels: {app: two}}
spec:
  securityContext: {fsGroup: 2000}
  volumes:
  - {name: conf, configMap: {name: cfg, defaultMode: 0444}}
  - {name: token, secret: {secretName: creds}}
  - {name: shared, emptyDir: {}}
  - {name: data, persistentVolumeClaim: {claimName: NAME-data}}
  - {name: host, hostPath: {path: HOSTDIR, type: DirectoryOrCreate}}
  containers:
  - name: web
    image: bb
    imagePullPolicy: Never
    command: [sh, -c, "echo up > /shared/web; exec sleep 1000"]
    volumeMounts:
    - {name: conf, mountPath: /etc/app}
    - {name: shared, mountPath: /shared}
    - {name: token, mountPath: /run/token}
    - {name: host, mountPath: /host}
    resources: {limits: {memory: 64Mi}}
  - name: side
    image: bb
    imagePullPolicy: Never
    args: [sleep, "1000"]
    env:
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    volumeMounts: [{name: shared, mountPath: /shared}, {name: data, mountPath: /data}]
"#;

#[test]
fn two_containers_with_configmap_file_secret_env_and_emptydir() {
    if !privileged("two_containers_with_configmap_file_secret_env_and_emptydir") {
        return;
    }
    let (e, net) = setup("kube2");
    let pod = unique("two");
    let host = e.s.dir.path().join("host-dir");
    let text = TWO.replace("NAME", &pod).replace("HOSTDIR", &host.to_string_lossy());
    // A hostPath of type Directory that is missing: refused, nothing made.
    let bad = write(e.s.dir.path(), "bad.yaml", &text.replace("DirectoryOrCreate", "Directory"));
    let o = e.wharf(&["kube", "play", "--network", &net, &bad]);
    assert!(!o.status.success() && stderr(&o).contains("is not a directory"), "{}", stderr(&o));
    assert_eq!(e.ok(&["pod", "ls", "-q"]), "");
    let f = write(e.s.dir.path(), "two.yaml", &text);
    let out = e.ok(&["kube", "play", "--network", &net, &f]);
    assert!(out.contains(&pod), "{out}");
    let (web, side) = (format!("{pod}-web"), format!("{pod}-side"));
    e.wait_status(&web, "running", 20);
    e.wait_status(&side, "running", 20);
    assert_eq!(e.exec(&web, &["cat", "/etc/app/app.conf"]), "color=blue");
    assert_eq!(e.exec(&web, &["stat", "-c", "%a", "/etc/app/app.conf"]), "444");
    // fsGroup: a supplementary group, and the emptyDir's group (setgid).
    assert!(e.exec(&side, &["id", "-G"]).split(' ').any(|g| g == "2000"));
    assert_eq!(e.exec(&side, &["stat", "-c", "%g %a", "/shared"]), "2000 2777");
    assert_eq!(e.exec(&side, &["sh", "-c", "echo $PASSWORD"]), "hunter2");
    // The configMap volume is read-only; the emptyDir is shared.
    let o = e.wharf(&["exec", &web, "sh", "-c", "echo x > /etc/app/new"]);
    assert!(!o.status.success(), "a configMap volume must be read-only");
    wait_for(10, "the shared emptyDir", || e.wharf(&["exec", &side, "cat", "/shared/web"]).status.success());
    // The Secret's file is stored 0600 under the store, decoded.
    let secret = e.s.root.join("kube/pods").join(&pod).join("volumes/token/password");
    let meta = std::fs::metadata(&secret).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777, 0o600);
    assert_eq!(e.exec(&web, &["cat", "/run/token/password"]), "hunter2");
    // DirectoryOrCreate made the host dir.
    e.exec(&web, &["touch", "/host/seen"]);
    assert!(host.join("seen").exists());
    // The claim is a named volume.
    e.exec(&side, &["sh", "-c", "echo kept > /data/f"]);
    assert!(e.ok(&["volume", "ls", "-q"]).lines().any(|v| v == format!("{pod}-data")));
    // memory limit → the container's cgroup.
    assert_eq!(e.inspect(&web, "{{.HostConfig.Memory}}"), "67108864");
    // Played twice: refused, nothing changed.
    let o = e.wharf(&["kube", "play", "--network", &net, &f]);
    assert!(!o.status.success() && stderr(&o).contains("already exists"), "{}", stderr(&o));
    finish(&e, &net, &[&f]);
}

#[test]
fn deployment_with_three_replicas() {
    if !privileged("deployment_with_three_replicas") {
        return;
    }
    let (e, net) = setup("kubed");
    let d = unique("dep");
    let text = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {d}}}\nspec:\n  replicas: 3\n  selector: {{matchLabels: {{app: {d}}}}}\n  template:\n    metadata: {{labels: {{app: {d}}}}}\n    spec:\n      containers: [{{name: c, image: bb, imagePullPolicy: Never, args: [sleep, '1000']}}]\n"
    );
    let f = write(e.s.dir.path(), "dep.yaml", &text);
    let out = e.ok(&["kube", "play", "--network", &net, &f]);
    let pods: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(pods.len(), 3, "{out}");
    for p in &pods {
        // Kubernetes' names: <deployment>-<10 hash>-<5 random>.
        let rest = p.strip_prefix(&format!("{d}-")).unwrap();
        let (hash, rand) = rest.split_once('-').unwrap();
        assert_eq!((hash.len(), rand.len()), (10, 5), "{p}");
        e.wait_status(&format!("{p}-c"), "running", 20);
    }
    assert_eq!(pods.iter().map(|p| &p[..p.len() - 6]).collect::<std::collections::BTreeSet<_>>().len(), 1);
    // --replace: three new pods in place of the old.
    let again = e.ok(&["kube", "play", "--replace", "--network", &net, &f]);
    let new: Vec<&str> = again.lines().skip(1).collect();
    assert_eq!(new.len(), 3);
    assert!(new.iter().all(|p| !pods.contains(p)), "{again}");
    assert_eq!(e.ok(&["ps", "-q"]).lines().count(), 3);
    finish(&e, &net, &[&f]);
}

#[test]
fn crash_loop_back_off_and_liveness() {
    if !privileged("crash_loop_back_off_and_liveness") {
        return;
    }
    let (e, net) = setup("kubec");
    let pod = unique("crash");
    let text = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {pod}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: crash, image: bb, imagePullPolicy: Never, command: [sh, -c, "echo boom; exit 3"]}}
  - name: sick
    image: bb
    imagePullPolicy: Never
    args: [sleep, "1000"]
    livenessProbe: {{exec: {{command: [cat, /tmp/healthy]}}, periodSeconds: 1, failureThreshold: 2}}
  - name: web
    image: bb
    imagePullPolicy: Never
    command: [sh, -c, "mkdir -p /www && echo ok > /www/healthz && exec httpd -f -p 8080 -h /www"]
    livenessProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 1}}
    readinessProbe: {{httpGet: {{path: /missing, port: 8080}}, periodSeconds: 1, failureThreshold: 1}}
    startupProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
"#
    );
    let f = write(e.s.dir.path(), "crash.yaml", &text);
    e.ok(&["kube", "play", "--network", &net, &f]);
    let (crash, sick, web) = (format!("{pod}-crash"), format!("{pod}-sick"), format!("{pod}-web"));
    // CrashLoopBackOff: the first restart waits 10 s, and says so meanwhile.
    e.wait_status(&crash, "restarting", 10);
    let backoff = e.inspect(&crash, "{{json .State.BackOff}}");
    assert!(backoff.contains("CrashLoopBackOff") && backoff.contains("\"DelaySeconds\":10"), "{backoff}");
    // `pod inspect` says it too, for each member (it did not: restart counts only).
    let pi = e.ok(&["pod", "inspect", &pod]);
    assert!(pi.contains("CrashLoopBackOff"), "{pi}");
    assert_eq!(restart_count(&e, &crash), 0, "no restart before 10 s");
    wait_for(25, "the first restart", || restart_count(&e, &crash) >= 1);
    // The failing liveness probe killed `sick`; its monitor restarts it after the back-off.
    wait_for(30, "sick to be restarted", || restart_count(&e, &sick) >= 1);
    let probes = e.inspect(&sick, "{{json .State.Probes}}");
    assert!(probes.contains("liveness"), "{probes}");
    // The http/tcp probes run in the pod's netns: startup and liveness pass, readiness fails.
    let probe = |role: &str| e.inspect(&web, &format!("{{{{.State.Probes.{role}.Status}}}}"));
    wait_for(15, "web's probes", || {
        probe("startup") == "healthy" && probe("liveness") == "healthy" && probe("readiness") == "unhealthy"
    });
    assert_eq!(restart_count(&e, &web), 0);
    finish(&e, &net, &[&f]);
}

#[test]
fn init_containers_finish_first() {
    if !privileged("init_containers_finish_first") {
        return;
    }
    let (e, net) = setup("kubei");
    let pod = unique("init");
    let text = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {pod}}}
spec:
  volumes: [{{name: work, emptyDir: {{medium: Memory}}}}]
  initContainers:
  - {{name: one, image: bb, imagePullPolicy: Never, command: [sh, -c, "sleep 1; echo one > /work/log"], volumeMounts: [{{name: work, mountPath: /work}}]}}
  - {{name: two, image: bb, imagePullPolicy: Never, command: [sh, -c, "echo two >> /work/log"], volumeMounts: [{{name: work, mountPath: /work}}]}}
  containers:
  - {{name: app, image: bb, imagePullPolicy: Never, command: [sh, -c, "cat /work/log; exec sleep 1000"], volumeMounts: [{{name: work, mountPath: /work}}]}}
"#
    );
    let f = write(e.s.dir.path(), "init.yaml", &text);
    e.ok(&["kube", "play", "--network", &net, &f]);
    let app = format!("{pod}-app");
    e.wait_status(&app, "running", 20);
    wait_for(10, "the app's log", || e.ok(&["logs", &app]) == "one\ntwo");
    assert_eq!(e.status(&format!("{pod}-one")), "exited");
    // Broke: `pod rm` without `kube down` left the Memory emptyDir mounted
    // and the pod's kube dir (its Secret files too) behind.
    let kdir = e.s.root.join("kube/pods").join(&pod);
    assert!(kdir.exists());
    e.ok(&["pod", "rm", "-f", &pod]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&*kdir.to_string_lossy()), "tmpfs left:\n{mounts}");
    assert!(!kdir.exists(), "{} left", kdir.display());
    finish(&e, &net, &[&f]);
    // A failing init container with restartPolicy Never: play fails, nothing is left.
    let bad = text.replace("echo two >> /work/log", "exit 7").replace("spec:\n", "spec:\n  restartPolicy: Never\n");
    let f = write(e.s.dir.path(), "bad-init.yaml", &bad);
    e.ok(&["network", "create", &net]);
    let o = e.wharf(&["kube", "play", "--network", &net, &f]);
    assert!(!o.status.success() && stderr(&o).contains("init container \"two\""), "{}", stderr(&o));
    assert_eq!(e.ok(&["ps", "-a", "-q"]), "");
    finish(&e, &net, &[&f]);
}

#[test]
fn failing_init_container_is_retried_with_back_off_and_play_ends() {
    if !privileged("failing_init_container_is_retried_with_back_off_and_play_ends") {
        return;
    }
    let (e, net) = setup("kubeb");
    let pod = unique("initb");
    // Fails once, succeeds when its monitor restarts it (after the kubelet's 10 s back-off).
    let text = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {pod}}}
spec:
  restartPolicy: OnFailure
  volumes: [{{name: work, emptyDir: {{}}}}]
  initContainers:
  - {{name: flaky, image: bb, imagePullPolicy: Never, command: [sh, -c, "test -f /work/tried && exit 0; touch /work/tried; exit 5"], volumeMounts: [{{name: work, mountPath: /work}}]}}
  containers:
  - {{name: app, image: bb, imagePullPolicy: Never, command: [sleep, "1000"]}}
"#
    );
    let f = write(e.s.dir.path(), "flaky.yaml", &text);
    e.ok(&["kube", "play", "--network", &net, &f]);
    assert_eq!(restart_count(&e, &format!("{pod}-flaky")), 1);
    e.wait_status(&format!("{pod}-app"), "running", 10);
    finish(&e, &net, &[&f]);
    // One that always fails, under Always: retried, then play ends with a clear
    // error once --init-timeout runs out (broke: play waited forever), and
    // undoes the pod.
    let bad = text
        .replace("test -f /work/tried && exit 0; touch /work/tried; exit 5", "exit 5")
        .replace("OnFailure", "Always");
    let f = write(e.s.dir.path(), "stuck.yaml", &bad);
    e.ok(&["network", "create", &net]);
    let mut child =
        e.s.cmd()
            .args(["kube", "play", "--init-timeout", "3", "--network", &net, &f])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kube play of a pod whose init container always fails did not end");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("init container \"flaky\" did not complete within 3s") && err.contains("CrashLoopBackOff"),
        "{err}"
    );
    e.remember();
    assert_eq!(e.ok(&["ps", "-a", "-q"]), "");
    assert_eq!(e.ok(&["pod", "ls", "-q"]), "");
    finish(&e, &net, &[&f]);
}

#[test]
fn liveness_kill_uses_the_stop_signal_and_the_grace_period() {
    if !privileged("liveness_kill_uses_the_stop_signal_and_the_grace_period") {
        return;
    }
    let (e, net) = setup("kubeg");
    let pod = unique("grace");
    let probe = "livenessProbe: {exec: {command: [cat, /tmp/healthy]}, periodSeconds: 1, failureThreshold: 1}";
    let text = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {pod}}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: polite
    image: bb
    imagePullPolicy: Never
    command: [sh, -c, "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done"]
    {probe}
  - name: stubborn
    image: bb
    imagePullPolicy: Never
    command: [sh, -c, "trap '' TERM; while true; do sleep 0.1; done"]
    {probe}
"#
    );
    let f = write(e.s.dir.path(), "grace.yaml", &text);
    e.ok(&["kube", "play", "--network", &net, &f]);
    let (polite, stubborn) = (format!("{pod}-polite"), format!("{pod}-stubborn"));
    // Broke: the probe's kill was a SIGKILL (exit 137, no trap ran).
    e.wait_status(&polite, "restarting", 20);
    assert_eq!(e.inspect(&polite, "{{.State.ExitCode}}"), "0");
    assert!(e.ok(&["logs", &polite]).contains("got-term"));
    // SIGTERM ignored: SIGKILL once the grace period ran out.
    e.wait_status(&stubborn, "restarting", 20);
    assert_eq!(e.inspect(&stubborn, "{{.State.ExitCode}}"), "137");
    finish(&e, &net, &[&f]);
}

#[test]
fn shared_pid_member_restarted_by_its_policy_after_the_infra_was() {
    if !privileged("shared_pid_member_restarted_by_its_policy_after_the_infra_was") {
        return;
    }
    let (e, net) = setup("kubep");
    let pod = unique("spid");
    let text = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {pod}}}
spec:
  shareProcessNamespace: true
  containers:
  - {{name: crash, image: bb, imagePullPolicy: Never, command: [sh, -c, "sleep 4; exit 3"]}}
"#
    );
    let f = write(e.s.dir.path(), "spid.yaml", &text);
    e.ok(&["kube", "play", "--network", &net, &f]);
    let crash = format!("{pod}-crash");
    e.wait_status(&crash, "restarting", 15);
    // During the back-off the infra dies and `pod start` starts a new one.
    let infra = |e: &Engine| -> i64 {
        let v: serde_json::Value = serde_json::from_str(&e.ok(&["pod", "inspect", &pod])).unwrap();
        v[0]["InfraConfig"]["Pid"].as_i64().unwrap_or(0)
    };
    let old = infra(&e);
    assert!(old > 0);
    wharf_tests::engine::kill9(old as i32);
    wait_for(10, "the infra to be seen dead", || infra(&e) == 0);
    e.ok(&["pod", "start", &pod]);
    let new = infra(&e);
    assert!(new > 0 && new != old);
    // Broke: the monitor's restart (same spec) named /proc/<old infra>/ns/pid and failed.
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    wait_for(25, "the member's restart by its policy, in the new infra's pid namespace", || {
        restart_count(&e, &crash) >= 1
            && e.status(&crash) == "running"
            && ns(&e.inspect(&crash, "{{.State.Pid}}")).is_some_and(|n| Some(n) == ns(&new.to_string()))
    });
    finish(&e, &net, &[&f]);
}

#[test]
fn generate_round_trips() {
    if !privileged("generate_round_trips") {
        return;
    }
    let (e, net) = setup("kubeg");
    let pod = unique("gen");
    let host = e.s.dir.path().join("host-dir");
    let f = write(e.s.dir.path(), "two.yaml", &TWO.replace("NAME", &pod).replace("HOSTDIR", &host.to_string_lossy()));
    e.ok(&["kube", "play", "--network", &net, &f]);
    e.wait_status(&format!("{pod}-side"), "running", 20);
    e.exec(&format!("{pod}-side"), &["sh", "-c", "echo kept > /data/f"]);
    let first = e.ok(&["kube", "generate", &pod]);
    assert!(
        first.contains("secretKeyRef") && !first.contains("hunter2"),
        "a Secret's value is never written out:\n{first}"
    );
    assert!(first.contains("fsGroup: 2000") && first.contains("defaultMode: 292"), "{first}");
    let g = write(e.s.dir.path(), "gen.yaml", &first);
    e.ok(&["kube", "down", &f]);
    // Without --force, the claim's volume stays (and plays back with its data).
    assert!(e.ok(&["volume", "ls", "-q"]).lines().any(|v| v == format!("{pod}-data")));
    // The generated manifest plays back (its ConfigMap and Secret given with --configmap).
    let cm =
        write(e.s.dir.path(), "cm.yaml", TWO.split("---\napiVersion: v1\nkind: PersistentVolumeClaim").next().unwrap());
    e.ok(&["kube", "play", "--network", &net, "--configmap", &cm, &g]);
    e.wait_status(&format!("{pod}-side"), "running", 20);
    assert_eq!(e.exec(&format!("{pod}-side"), &["sh", "-c", "echo $PASSWORD"]), "hunter2");
    assert_eq!(e.exec(&format!("{pod}-side"), &["cat", "/data/f"]), "kept");
    let second = e.ok(&["kube", "generate", &pod]);
    assert_eq!(first, second, "generate → play → generate changed the manifest");
    finish(&e, &net, &[&g]);
}

#[test]
fn bad_manifests_create_nothing() {
    // No root needed: the manifest is refused before anything is made.
    let s = TestStore::new();
    let cases = [
        ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "kind \"Service\" is not supported"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n", "spec.containers[0].image: Required value"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x, ports: [{containerPort: web}]}]}\n", "spec.containers[0].ports[0].containerPort: invalid type"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {volumes: [{name: v, emptyDir: {}}], containers: [{name: c, image: x}, {name: d, image: x, volumeMounts: [{name: v, mountPath: /v, subPathExpr: a}]}]}\n", "spec.containers[1].volumeMounts[0].subPathExpr: not supported"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        // A good ConfigMap first: nothing of it may be made either.
        let body = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{a: b}}\n---\n{text}");
        let f = write(s.dir.path(), &format!("bad{i}.yaml"), &body);
        let o = s.run(["kube", "play", &f]);
        assert!(!o.status.success(), "{text}");
        assert!(stderr(&o).contains(want), "want {want:?} in {}{}", stderr(&o), stdout(&o));
        assert!(stderr(&o).contains(&format!("bad{i}.yaml: document 2")), "{}", stderr(&o));
    }
    for d in ["containers", "kube", "pods", "volumes"] {
        assert_eq!(entries(&s.root.join(d)), Vec::<String>::new(), "{d}");
    }
}
