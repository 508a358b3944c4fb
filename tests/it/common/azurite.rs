//! Azurite, Microsoft's Azure Storage emulator (npm `azurite`; its `azurite-blob` runs the Blob service alone),
//! started by each test on a free loopback port with an account of the test's own, in memory.
//!
//! The test's own client is `object_store`'s, configured explicitly (never from the environment); the binary
//! under test gets its account from the environment, through Azurite's usual variables.

use super::emulator::{self, Emulator};
use super::moto::Listed;
use object_store::azure::{
    AzureAccessKey, AzureAuthorizer, AzureCredential, MicrosoftAzureBuilder,
};
use object_store::client::HttpRequestBody;
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, GetOptions, ObjectStore, ObjectStoreExt, PutPayload};
use std::process::Command;
use std::sync::Arc;

/// The account the tests use, not Azurite's well-known one, so its key is distinctive: tests check that it is
/// never printed.
pub const ACCOUNT: &str = "iiiftest";
/// base64 of "azurite-secret-never-printed-0123456789".
pub const ACCOUNT_KEY: &str = "YXp1cml0ZS1zZWNyZXQtbmV2ZXItcHJpbnRlZC0wMTIzNDU2Nzg5";

/// The reason on every test that needs Azurite.
pub const IGNORED: &str = "needs azurite-blob on PATH (npm install azurite)";

pub struct Azurite {
    pub server: Emulator,
    rt: tokio::runtime::Runtime,
}

pub fn start() -> Azurite {
    let accounts = format!("{ACCOUNT}:{ACCOUNT_KEY}");
    let server = emulator::start(&emulator::Spec {
        program: "azurite-blob",
        args: &|port| {
            [
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
                "--inMemoryPersistence",
                "--extentMemoryLimit",
                "1024",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--loose",
            ]
            .map(String::from)
            .to_vec()
        },
        env: &[("AZURITE_ACCOUNTS", accounts.as_str())],
        install: "npm install azurite",
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    Azurite { server, rt }
}

impl Azurite {
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// Create a container with a request signed with the account key (object_store has no call for it).
    pub fn create_container(&self, name: &str) {
        let uri = format!("{}/{ACCOUNT}/{name}?restype=container", self.endpoint());
        let mut request = http::Request::builder()
            .method("PUT")
            .uri(&uri)
            .body(HttpRequestBody::empty())
            .unwrap();
        let credential = AzureCredential::AccessKey(AzureAccessKey::try_new(ACCOUNT_KEY).unwrap());
        AzureAuthorizer::new(&credential, ACCOUNT)
            .try_authorize(&mut request)
            .unwrap();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let target = format!("/{ACCOUNT}/{name}?restype=container");
        let answer = self
            .server
            .request("PUT", &target, &headers)
            .unwrap_or_else(|| panic!("no answer to creating container {name}"));
        assert_eq!(
            answer.status,
            201,
            "create container {name}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }

    /// The test's own client for `container`.
    pub fn container(&self, container: &str) -> Arc<dyn ObjectStore> {
        let _guard = self.rt.enter();
        Arc::new(
            MicrosoftAzureBuilder::new()
                .with_account(ACCOUNT)
                .with_access_key(ACCOUNT_KEY)
                .with_endpoint(format!("{}/{ACCOUNT}", self.endpoint()))
                .with_allow_http(true)
                .with_container_name(container)
                .build()
                .unwrap(),
        )
    }

    pub fn put(&self, container: &str, key: &str, bytes: Vec<u8>) {
        let c = self.container(container);
        self.rt
            .block_on(c.put(&ObjectPath::from(key), PutPayload::from(bytes)))
            .unwrap_or_else(|e| panic!("put {container}/{key}: {e}"));
    }

    pub fn get(&self, container: &str, key: &str) -> Option<Vec<u8>> {
        let c = self.container(container);
        match self
            .rt
            .block_on(async { c.get(&ObjectPath::from(key)).await?.bytes().await })
        {
            Ok(bytes) => Some(bytes.to_vec()),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => panic!("get {container}/{key}: {e}"),
        }
    }

    pub fn delete(&self, container: &str, key: &str) {
        let c = self.container(container);
        self.rt
            .block_on(c.delete(&ObjectPath::from(key)))
            .unwrap_or_else(|e| panic!("delete {container}/{key}: {e}"));
    }

    /// The Content-Type and Cache-Control of an object, as a HEAD request gets them.
    pub fn served_as(&self, container: &str, key: &str) -> (Option<String>, Option<String>) {
        let c = self.container(container);
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let got = self
            .rt
            .block_on(c.get_opts(&ObjectPath::from(key), options))
            .unwrap_or_else(|e| panic!("head {container}/{key}: {e}"));
        let attribute = |a| got.attributes.get(&a).map(|v| v.to_string());
        (
            attribute(Attribute::ContentType),
            attribute(Attribute::CacheControl),
        )
    }

    /// Every object in `container`, sorted by key.
    pub fn list(&self, container: &str) -> Vec<Listed> {
        use futures_util::TryStreamExt;
        let c = self.container(container);
        let metas = self
            .rt
            .block_on(c.list(None).try_collect::<Vec<_>>())
            .unwrap_or_else(|e| panic!("list {container}: {e}"));
        let mut listed: Vec<Listed> = metas
            .into_iter()
            .map(|m| Listed {
                key: m.location.to_string(),
                e_tag: m.e_tag,
                last_modified: m.last_modified.to_rfc3339(),
                size: m.size,
            })
            .collect();
        listed.sort();
        listed
    }

    pub fn keys(&self, container: &str) -> Vec<String> {
        self.list(container).into_iter().map(|l| l.key).collect()
    }

    /// Point `cmd` at this emulator through Azurite's usual environment variables, and no other AZURE_ ones.
    pub fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        azure_env(cmd, &self.endpoint())
    }
}

/// The Azure environment of a run against the Azurite at `endpoint`; the caller's AZURE_* are removed.
pub fn azure_env<'a>(cmd: &'a mut Command, endpoint: &str) -> &'a mut Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("AZURE_") || k.starts_with("AZURITE_") {
            cmd.env_remove(&*k);
        }
    }
    cmd.env("AZURE_STORAGE_USE_EMULATOR", "true")
        .env("AZURITE_BLOB_STORAGE_URL", endpoint)
        .env("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT)
        .env("AZURE_STORAGE_ACCOUNT_KEY", ACCOUNT_KEY)
}
