use crate::kube::plan_files;

fn plan(text: &str) -> Result<Vec<crate::kube::PodPlan>, String> {
    let mut n = 0;
    let mut names = |d: &str, _: &k8s_openapi::api::core::v1::PodSpec| {
        n += 1;
        format!("{d}-{n}")
    };
    plan_files(&[("pod.yaml".into(), text.into())], &mut names).map(|(_, _, p)| p).map_err(|e| e.to_string())
}

fn err(text: &str) -> String {
    plan(text).expect_err("the manifest should be refused")
}

const POD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello, "app.conf": "x=1\n"}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
data: {password: aHVudGVyMg==}
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web, "app.kubernetes.io/name": web}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 3
  volumes:
  - name: conf
    configMap: {name: cfg, items: [{key: app.conf, path: etc/app.conf, mode: 0600}]}
  - name: scratch
    emptyDir: {medium: Memory}
  containers:
  - name: app
    image: busybox
    command: [sh, -c]
    args: ["echo $GREETING; sleep 100"]
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: sec, key: password}}}
    ports: [{containerPort: 80, hostPort: 8080}]
    resources: {limits: {memory: 64Mi, cpu: 500m}, requests: {cpu: 250m}}
    volumeMounts:
    - {name: conf, mountPath: /conf}
    - {name: scratch, mountPath: /scratch}
    livenessProbe: {httpGet: {path: /healthz, port: 80}, periodSeconds: 2}
  - name: side
    image: busybox
    args: [sleep, "100"]
    envFrom: [{configMapRef: {name: cfg}, prefix: CFG_}]
    securityContext: {runAsUser: 1000, runAsGroup: 1000, capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
"#;

#[test]
fn a_pod_with_configmap_and_secret_is_planned() {
    let pods = plan(POD).unwrap();
    assert_eq!(pods.len(), 1);
    let p = &pods[0];
    assert_eq!(p.name, "web");
    assert_eq!(p.publish, ["8080:80/tcp"]);
    assert_eq!(p.restart_policy, "OnFailure");
    let app = &p.containers[0].run;
    assert_eq!(app.name.as_deref(), Some("web-app"));
    assert_eq!(app.entrypoint.as_deref(), Some(""));
    assert_eq!(app.cmd, ["sh", "-c", "echo $GREETING; sleep 100"]);
    assert!(app.env.contains(&"GREETING=hello".to_string()));
    assert!(app.env.contains(&"PASSWORD=hunter2".to_string()));
    assert_eq!(app.memory.as_deref(), Some("67108864"));
    assert_eq!(app.cpus, Some(0.5));
    assert_eq!(app.host.cpu_shares, Some(256));
    assert_eq!(app.restart.as_deref(), Some("on-failure"));
    assert_eq!(app.stop_timeout, Some(3));
    let live = p.containers[0].liveness.as_ref().unwrap();
    assert_eq!(live.role, "liveness");
    assert_eq!(live.period_ns, 2_000_000_000);
    let side = &p.containers[1].run;
    assert_eq!(side.cmd, ["sleep", "100"]);
    assert_eq!(side.entrypoint, None);
    assert!(side.env.contains(&"CFG_greeting=hello".to_string()));
    assert_eq!(side.user.as_deref(), Some("1000:1000"));
    assert!(side.read_only);
    assert_eq!(side.host.cap_drop, ["ALL"]);
    match &p.volumes[0].source {
        crate::kube::plan::Source::Files { secret, files, .. } => {
            assert!(!secret);
            assert_eq!(files, &[("etc/app.conf".to_string(), b"x=1\n".to_vec(), 0o600)]);
        }
        s => panic!("{s:?}"),
    }
    assert_eq!(p.volumes[1].source, crate::kube::plan::Source::EmptyDir { memory: true, size: None });
    assert!(p.containers[0].mounts[0].read_only, "configMap volumes are read-only");
}

#[test]
fn deployments_make_replicas_pods() {
    let d = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: c, image: busybox}]
"#;
    let pods = plan(d).unwrap();
    let names: Vec<_> = pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["api-1", "api-2", "api-3"]);
    assert_eq!(pods[0].deployment.as_deref(), Some("api"));
    let bad = d.replace("{labels: {app: api}}", "{labels: {app: other}}");
    assert!(err(&bad).contains("spec.template.metadata.labels: Invalid value"), "{}", err(&bad));
    let name = crate::kube::deployment_pod_name("api", &Default::default());
    let parts: Vec<_> = name.split('-').collect();
    assert_eq!((parts.len(), parts[1].len(), parts[2].len()), (3, 10, 5), "{name}");
}

#[test]
fn bad_manifests_name_the_field() {
    let pod = |spec: &str| format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n{spec}");
    let cases = [
        ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "kind \"Service\" is not supported"),
        ("apiVersion: v1\nmetadata: {name: s}\n", "kind: Required value"),
        (&pod("  containers: [{name: c}]\n"), "Pod \"p\": spec.containers[0].image: Required value"),
        (&pod("  containers: [{name: c, image: busybox, ports: [{containerPort: eighty}]}]\n"), "spec.containers[0].ports[0].containerPort: invalid type: string \"eighty\""),
        (&pod("  containers: [{name: c, image: busybox, command: ls}]\n"), "spec.containers[0].command: invalid type: string"),
        (&pod("  containers: [{name: c, image: x}, {name: d, image: x, volumeMounts: [{name: v, mountPath: /v, subPathExpr: $(X)}]}]\n  volumes: [{name: v, emptyDir: {}}]\n"), "spec.containers[1].volumeMounts[0].subPathExpr: not supported"),
        (&pod("  containers: [{name: c, image: x, imagee: y}]\n"), "spec.containers[0].imagee: unknown field"),
        (&pod("  nodeSelector: {disk: ssd}\n  containers: [{name: c, image: x}]\n"), "spec.nodeSelector: not supported"),
        (&pod("  containers: [{name: c, image: x, env: [{name: A, valueFrom: {configMapKeyRef: {name: nope, key: k}}}]}]\n"), "spec.containers[0].env[0].valueFrom: configmap \"nope\" not found"),
        (&pod("  containers: [{name: c, image: x, volumeMounts: [{name: nope, mountPath: /x}]}]\n"), "spec.containers[0].volumeMounts[0].name: Not found"),
        (&pod("  containers: [{name: c, image: x}, {name: c, image: x}]\n"), "spec.containers[1].name: Duplicate value"),
        (&pod("  containers: [{name: C_1, image: x}]\n"), "spec.containers[0].name: Invalid value"),
        (&pod("  restartPolicy: Sometimes\n  containers: [{name: c, image: x}]\n"), "spec.restartPolicy: Unsupported value"),
        (&pod("  containers: [{name: c, image: x, resources: {limits: {memory: lots}}}]\n"), "spec.containers[0].resources.limits.memory: Invalid value"),
        (&pod("  containers: [{name: c, image: x, livenessProbe: {periodSeconds: 1}}]\n"), "spec.containers[0].livenessProbe: must specify a handler type"),
        (&pod("  containers: [{name: c, image: x, readinessProbe: {httpGet: {port: web}}}]\n"), "spec.containers[0].readinessProbe.httpGet.port: Invalid value"),
        (&pod("  volumes: [{name: v, secret: {secretName: s}}]\n  containers: [{name: c, image: x}]\n"), "spec.volumes[0]: secret \"s\" not found"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x}]}\nstatus: {phase: Running}\n", "status: not supported"),
        ("apiVersion: v2\nkind: Pod\nmetadata: {name: p}\n", "apiVersion: Unsupported value"),
        ("kind: Pod\n  bad: [indent\n", "invalid YAML"),
        ("", "no Kubernetes objects found"),
    ];
    for (text, want) in cases {
        let e = err(text);
        assert!(e.starts_with("pod.yaml: document ") || text.is_empty(), "{e}");
        assert!(e.contains(want), "want {want:?} in {e:?}");
    }
}

#[test]
fn the_second_bad_document_fails_the_whole_file() {
    let text =
        format!("{POD}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: q}}\nspec: {{containers: [{{name: c}}]}}\n");
    let e = err(&text);
    assert!(e.contains("document 4: Pod \"q\": spec.containers[0].image: Required value"), "{e}");
}
