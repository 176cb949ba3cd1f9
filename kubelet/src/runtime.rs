//! The container runtime, reached over the Container Runtime Interface (gRPC on a Unix
//! socket): containerd's CRI plugin, or any other CRI runtime.
//!
//! [`Runtime`] wraps the two CRI services with the calls the pod worker and the
//! kubelet API make, and names its errors after the call that failed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::Error;

/// The labels the kubelet puts on sandboxes and containers, as upstream's kubelet does,
/// so that what runs can be matched to pods after a restart.
pub mod labels {
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
}

/// A connected CRI runtime. Cloning shares the connection.
#[derive(Clone)]
pub struct Runtime {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    endpoint: PathBuf,
}

impl Runtime {
    /// Connects to the runtime's socket and checks it answers `Version`.
    pub async fn connect(socket: &Path) -> Result<Runtime, Error> {
        let path = socket.to_owned();
        // The URI is required by tonic but unused: every connection goes to `path`.
        let channel = Endpoint::from_static("http://cri.invalid")
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
            }))
            .await
            .map_err(|e| Error::RuntimeUnreachable { endpoint: socket.to_owned(), message: e.to_string() })?;
        let runtime = Runtime {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
            endpoint: socket.to_owned(),
        };
        runtime.version().await?;
        Ok(runtime)
    }

    /// The runtime's name and version, as the Node's `containerRuntimeVersion` shows
    /// them (`containerd://1.6.20`).
    pub async fn version(&self) -> Result<String, Error> {
        let reply = self
            .runtime
            .clone()
            .version(cri::VersionRequest { version: "v1".into() })
            .await
            .map_err(|e| self.failed("Version", e))?
            .into_inner();
        Ok(format!("{}://{}", reply.runtime_name, reply.runtime_version.trim_start_matches('v')))
    }

    pub async fn run_sandbox(&self, config: cri::PodSandboxConfig) -> Result<String, Error> {
        let request = cri::RunPodSandboxRequest { config: Some(config), runtime_handler: String::new() };
        let reply = self.runtime.clone().run_pod_sandbox(request).await.map_err(|e| self.failed("RunPodSandbox", e))?;
        Ok(reply.into_inner().pod_sandbox_id)
    }

    pub async fn stop_sandbox(&self, id: &str) -> Result<(), Error> {
        let request = cri::StopPodSandboxRequest { pod_sandbox_id: id.into() };
        self.runtime.clone().stop_pod_sandbox(request).await.map_err(|e| self.failed("StopPodSandbox", e))?;
        Ok(())
    }

    pub async fn remove_sandbox(&self, id: &str) -> Result<(), Error> {
        let request = cri::RemovePodSandboxRequest { pod_sandbox_id: id.into() };
        self.runtime.clone().remove_pod_sandbox(request).await.map_err(|e| self.failed("RemovePodSandbox", e))?;
        Ok(())
    }

    pub async fn sandbox_status(&self, id: &str) -> Result<cri::PodSandboxStatus, Error> {
        let request = cri::PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: false };
        let reply =
            self.runtime.clone().pod_sandbox_status(request).await.map_err(|e| self.failed("PodSandboxStatus", e))?;
        reply
            .into_inner()
            .status
            .ok_or_else(|| Error::Runtime { call: "PodSandboxStatus", message: format!("no status for sandbox {id}") })
    }

    /// Sandboxes carrying all of `labels` (every sandbox when empty).
    pub async fn sandboxes(&self, labels: HashMap<String, String>) -> Result<Vec<cri::PodSandbox>, Error> {
        let filter = cri::PodSandboxFilter { label_selector: labels, ..Default::default() };
        let request = cri::ListPodSandboxRequest { filter: Some(filter) };
        let reply =
            self.runtime.clone().list_pod_sandbox(request).await.map_err(|e| self.failed("ListPodSandbox", e))?;
        Ok(reply.into_inner().items)
    }

    /// Containers carrying all of `labels` (every container when empty).
    pub async fn containers(&self, labels: HashMap<String, String>) -> Result<Vec<cri::Container>, Error> {
        let filter = cri::ContainerFilter { label_selector: labels, ..Default::default() };
        let request = cri::ListContainersRequest { filter: Some(filter) };
        let reply =
            self.runtime.clone().list_containers(request).await.map_err(|e| self.failed("ListContainers", e))?;
        Ok(reply.into_inner().containers)
    }

    pub async fn container_status(&self, id: &str) -> Result<cri::ContainerStatus, Error> {
        let request = cri::ContainerStatusRequest { container_id: id.into(), verbose: false };
        let reply =
            self.runtime.clone().container_status(request).await.map_err(|e| self.failed("ContainerStatus", e))?;
        reply
            .into_inner()
            .status
            .ok_or_else(|| Error::Runtime { call: "ContainerStatus", message: format!("no status for container {id}") })
    }

    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: cri::ContainerConfig,
        sandbox_config: cri::PodSandboxConfig,
    ) -> Result<String, Error> {
        let request = cri::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        let reply =
            self.runtime.clone().create_container(request).await.map_err(|e| self.failed("CreateContainer", e))?;
        Ok(reply.into_inner().container_id)
    }

    pub async fn start_container(&self, id: &str) -> Result<(), Error> {
        let request = cri::StartContainerRequest { container_id: id.into() };
        self.runtime.clone().start_container(request).await.map_err(|e| self.failed("StartContainer", e))?;
        Ok(())
    }

    /// Stops a container, giving it `grace_seconds` after SIGTERM before SIGKILL.
    pub async fn stop_container(&self, id: &str, grace_seconds: i64) -> Result<(), Error> {
        let request = cri::StopContainerRequest { container_id: id.into(), timeout: grace_seconds };
        self.runtime.clone().stop_container(request).await.map_err(|e| self.failed("StopContainer", e))?;
        Ok(())
    }

    pub async fn remove_container(&self, id: &str) -> Result<(), Error> {
        let request = cri::RemoveContainerRequest { container_id: id.into() };
        self.runtime.clone().remove_container(request).await.map_err(|e| self.failed("RemoveContainer", e))?;
        Ok(())
    }

    /// Runs `command` in a container and waits for it, at most `timeout_seconds` (0:
    /// no limit).
    pub async fn exec_sync(&self, id: &str, command: Vec<String>, timeout_seconds: i64) -> Result<ExecOutput, Error> {
        let request = cri::ExecSyncRequest { container_id: id.into(), cmd: command, timeout: timeout_seconds };
        let reply = self.runtime.clone().exec_sync(request).await.map_err(|e| self.failed("ExecSync", e))?;
        let reply = reply.into_inner();
        Ok(ExecOutput { exit_code: reply.exit_code, stdout: reply.stdout, stderr: reply.stderr })
    }

    /// The URL of the runtime's streaming server that serves this exec.
    pub async fn exec(&self, request: cri::ExecRequest) -> Result<String, Error> {
        let reply = self.runtime.clone().exec(request).await.map_err(|e| self.failed("Exec", e))?;
        Ok(reply.into_inner().url)
    }

    /// The URL of the runtime's streaming server that serves this attach.
    pub async fn attach(&self, request: cri::AttachRequest) -> Result<String, Error> {
        let reply = self.runtime.clone().attach(request).await.map_err(|e| self.failed("Attach", e))?;
        Ok(reply.into_inner().url)
    }

    /// The URL of the runtime's streaming server that forwards to the sandbox's ports.
    pub async fn port_forward(&self, sandbox_id: &str) -> Result<String, Error> {
        let request = cri::PortForwardRequest { pod_sandbox_id: sandbox_id.into(), port: Vec::new() };
        let reply = self.runtime.clone().port_forward(request).await.map_err(|e| self.failed("PortForward", e))?;
        Ok(reply.into_inner().url)
    }

    /// The image's id (`sha256:…`) if the runtime holds it.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, Error> {
        let request = cri::ImageStatusRequest { image: Some(image_spec(image)), verbose: false };
        let reply = self.images.clone().image_status(request).await.map_err(|e| self.failed("ImageStatus", e))?;
        Ok(reply.into_inner().image.map(|i| i.id))
    }

    /// Pulls an image; returns its reference (`sha256:…`).
    pub async fn pull_image(&self, image: &str, sandbox: cri::PodSandboxConfig) -> Result<String, Error> {
        let request =
            cri::PullImageRequest { image: Some(image_spec(image)), auth: None, sandbox_config: Some(sandbox) };
        let reply = self.images.clone().pull_image(request).await.map_err(|e| self.failed("PullImage", e))?;
        Ok(reply.into_inner().image_ref)
    }

    fn failed(&self, call: &'static str, status: tonic::Status) -> Error {
        tracing::debug!(call, endpoint = %self.endpoint.display(), code = ?status.code(), "CRI call failed");
        Error::Runtime { call, message: status.message().to_owned() }
    }
}

/// What a command run with [`Runtime::exec_sync`] left.
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

pub fn image_spec(image: &str) -> cri::ImageSpec {
    cri::ImageSpec { image: image.into(), ..Default::default() }
}
