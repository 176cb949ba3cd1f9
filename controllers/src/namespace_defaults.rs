//! What every namespace gets: the `default` ServiceAccount (kube-controller-manager's
//! `serviceaccount` controller) and the `kube-root-ca.crt` ConfigMap holding the
//! cluster's CA bundle (`root-ca-cert-publisher`). Both are recreated when deleted and
//! the ConfigMap is put back when edited.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// The ServiceAccount every namespace gets.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// The ConfigMap holding the cluster CA bundle.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Keeps a `default` ServiceAccount in every namespace.
pub async fn run_service_accounts(client: Client) -> Result<(), Error> {
    let ensure = Arc::new(
        |api: Api<ServiceAccount>, existing: Option<ServiceAccount>| -> BoxFuture<'static, Result<(), Error>> {
            Box::pin(async move {
                if existing.is_none() {
                    let account = ServiceAccount {
                        metadata: ObjectMeta { name: Some(DEFAULT_SERVICE_ACCOUNT.into()), ..ObjectMeta::default() },
                        ..ServiceAccount::default()
                    };
                    create_if_absent(&api, &account).await?;
                }
                Ok(())
            })
        },
    );
    per_namespace(client, "serviceaccount", DEFAULT_SERVICE_ACCOUNT, ensure).await
}

/// Keeps `kube-root-ca.crt` with `ca.crt: <ca>` in every namespace.
pub async fn run_root_ca_publisher(client: Client, ca: String) -> Result<(), Error> {
    let ensure =
        Arc::new(move |api: Api<ConfigMap>, existing: Option<ConfigMap>| -> BoxFuture<'static, Result<(), Error>> {
            let ca = ca.clone();
            Box::pin(async move {
                let data = BTreeMap::from([("ca.crt".to_owned(), ca)]);
                let description = ("kubernetes.io/description".to_owned(), ROOT_CA_DESCRIPTION.to_owned());
                match existing {
                    None => {
                        let map = ConfigMap {
                            metadata: ObjectMeta {
                                name: Some(ROOT_CA_CONFIG_MAP.into()),
                                annotations: Some(BTreeMap::from([description])),
                                ..ObjectMeta::default()
                            },
                            data: Some(data),
                            ..ConfigMap::default()
                        };
                        create_if_absent(&api, &map).await
                    }
                    Some(mut map) => {
                        let annotated = map.annotations().get(&description.0) == Some(&description.1);
                        if map.data.as_ref() == Some(&data) && map.binary_data.is_none() && annotated {
                            return Ok(());
                        }
                        map.data = Some(data);
                        map.binary_data = None;
                        map.annotations_mut().insert(description.0, description.1);
                        // A conflict means someone else wrote it meanwhile: the watch brings us back.
                        api.replace(ROOT_CA_CONFIG_MAP, &PostParams::default(), &map).await?;
                        Ok(())
                    }
                }
            })
        });
    per_namespace(client, "root-ca-cert-publisher", ROOT_CA_CONFIG_MAP, ensure).await
}

type Ensure<K> = Arc<dyn Fn(Api<K>, Option<K>) -> BoxFuture<'static, Result<(), Error>> + Send + Sync>;

struct Context<K> {
    client: Client,
    child: &'static str,
    ensure: Ensure<K>,
}

/// Runs `ensure` for each live namespace with the namespace's object named `child`
/// (or `None`), again whenever that object changes or goes.
async fn per_namespace<K>(
    client: Client,
    controller: &'static str,
    child: &'static str,
    ensure: Ensure<K>,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let children = Api::<K>::all(client.clone());
    let named = watcher::Config::default().fields(&format!("metadata.name={child}"));
    let context = Arc::new(Context { client: client.clone(), child, ensure });
    let results = Controller::new(Api::<Namespace>::all(client), watcher::Config::default())
        .watches(children, named, |object: K| object.namespace().map(|ns| ObjectRef::<Namespace>::new(&ns)))
        .run(reconcile, retry_later, context);
    crate::drive(results, controller).await;
    Err(Error::Stopped { controller })
}

async fn reconcile<K>(namespace: Arc<Namespace>, context: Arc<Context<K>>) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let terminating = namespace.metadata.deletion_timestamp.is_some()
        || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating {
        return Ok(Action::await_change());
    }
    let api = Api::<K>::namespaced(context.client.clone(), &namespace.name_any());
    let existing = api.get_opt(context.child).await?;
    (context.ensure)(api, existing).await?;
    Ok(Action::await_change())
}

fn retry_later<K>(_: Arc<Namespace>, _: &Error, _: Arc<Context<K>>) -> Action {
    Action::requeue(Duration::from_secs(2))
}

/// Creates `object`; one that appeared meanwhile is fine. A namespace that started
/// terminating refuses creates (403): its next event settles it.
async fn create_if_absent<K>(api: &Api<K>, object: &K) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error.into()),
    }
}
