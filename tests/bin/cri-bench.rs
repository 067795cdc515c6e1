//! `wharf-cri-bench SOCKET IMAGE RUNS PODS`: the latency of each CRI call
//! the kubelet makes for a pod's life, through one tonic client on one
//! connection, against any CRI endpoint (bench/cri-runtime.sh runs it on
//! `wharf cri` and on containerd in the same run).
//!
//! Per iteration: PullImage (after RemoveImage), RunPodSandbox,
//! CreateContainer, StartContainer, ExecSync (`true`), StopContainer,
//! RemoveContainer, StopPodSandbox, RemovePodSandbox. Then PODS pods with
//! one running container each are started and held while the caller reads
//! RSS (it prints `HOLDING` and waits for a line on stdin), then removed.
//! Prints one JSON object: `{"RunPodSandbox": [ms, ...], ...}`.

use k8s_cri::v1 as cri;
use std::collections::BTreeMap;
use std::time::Instant;

type Rt = cri::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;
type Img = cri::image_service_client::ImageServiceClient<tonic::transport::Channel>;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    rt.block_on(bench());
}

async fn bench() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: wharf-cri-bench SOCKET IMAGE RUNS PODS LOGDIR");
        std::process::exit(2);
    }
    let (sock, image) = (args[1].clone(), args[2].clone());
    let runs: usize = args[3].parse().expect("RUNS");
    let pods: usize = args[4].parse().expect("PODS");
    let logdir = args[5].clone();
    let ch = tonic::transport::Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| {
            let path = sock.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .expect("connect");
    let mut rt = Rt::new(ch.clone());
    let mut img = Img::new(ch);
    let mut times: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for i in 0..runs {
        let _ = img.remove_image(cri::RemoveImageRequest { image: spec(&image) }).await;
        let t = Instant::now();
        img.pull_image(cri::PullImageRequest { image: spec(&image), ..Default::default() }).await.expect("pull");
        times.entry("PullImage").or_default().push(ms(t));
        one_pod(&mut rt, &image, &logdir, &format!("bench-{i}"), &mut times).await;
    }
    let mut held = Vec::new();
    for i in 0..pods {
        held.push(start_pod(&mut rt, &image, &logdir, &format!("held-{i}"), &mut BTreeMap::new()).await);
    }
    if pods > 0 {
        eprintln!("HOLDING");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    for (pod, ctr) in held {
        stop_pod(&mut rt, &pod, &ctr, &mut BTreeMap::new()).await;
    }
    let out: BTreeMap<&str, String> = times
        .iter()
        .map(|(k, v)| (*k, format!("[{}]", v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(","))))
        .collect();
    let body: Vec<String> = out.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    println!("{{{}}}", body.join(","));
}

fn spec(image: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec { image: image.into(), ..Default::default() })
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

async fn one_pod(rt: &mut Rt, image: &str, logdir: &str, name: &str, times: &mut BTreeMap<&'static str, Vec<f64>>) {
    let (pod, ctr) = start_pod(rt, image, logdir, name, times).await;
    let t = Instant::now();
    let r = rt
        .exec_sync(cri::ExecSyncRequest { container_id: ctr.clone(), cmd: vec!["true".into()], timeout: 10 })
        .await
        .expect("ExecSync");
    assert_eq!(r.get_ref().exit_code, 0, "ExecSync true");
    times.entry("ExecSync").or_default().push(ms(t));
    stop_pod(rt, &pod, &ctr, times).await;
}

fn sandbox_config(logdir: &str, name: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}-{}", std::process::id()),
            namespace: "bench".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: format!("{logdir}/{name}"),
        linux: Some(cri::LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

async fn start_pod(
    rt: &mut Rt,
    image: &str,
    logdir: &str,
    name: &str,
    times: &mut BTreeMap<&'static str, Vec<f64>>,
) -> (String, String) {
    let config = sandbox_config(logdir, name);
    let t = Instant::now();
    let pod = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() })
        .await
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    times.entry("RunPodSandbox").or_default().push(ms(t));
    let cfg = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: "c".into(), attempt: 0 }),
        image: spec(image),
        command: vec!["sleep".into(), "3600".into()],
        log_path: "c.log".into(),
        linux: Some(cri::LinuxContainerConfig::default()),
        ..Default::default()
    };
    let t = Instant::now();
    let ctr = rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(cfg),
            sandbox_config: Some(config),
        })
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    times.entry("CreateContainer").or_default().push(ms(t));
    let t = Instant::now();
    rt.start_container(cri::StartContainerRequest { container_id: ctr.clone() }).await.expect("StartContainer");
    times.entry("StartContainer").or_default().push(ms(t));
    (pod, ctr)
}

async fn stop_pod(rt: &mut Rt, pod: &str, ctr: &str, times: &mut BTreeMap<&'static str, Vec<f64>>) {
    let t = Instant::now();
    rt.stop_container(cri::StopContainerRequest { container_id: ctr.into(), timeout: 0 }).await.expect("StopContainer");
    times.entry("StopContainer").or_default().push(ms(t));
    let t = Instant::now();
    rt.remove_container(cri::RemoveContainerRequest { container_id: ctr.into() }).await.expect("RemoveContainer");
    times.entry("RemoveContainer").or_default().push(ms(t));
    let t = Instant::now();
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod.into() }).await.expect("StopPodSandbox");
    times.entry("StopPodSandbox").or_default().push(ms(t));
    let t = Instant::now();
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod.into() }).await.expect("RemovePodSandbox");
    times.entry("RemovePodSandbox").or_default().push(ms(t));
}
