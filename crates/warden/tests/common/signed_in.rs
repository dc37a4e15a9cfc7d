//! A gateway that verifies tokens of a development OpenID provider on loopback and keeps its
//! store in a directory of its own, in front of the fixture: the set-up of the identity tests.

use serde_json::{Value, json};
use warden_gateway::devidp::{DevIdp, claims};

use super::*;

/// The provider, the gateway and its store's directory.
pub struct Setup {
    pub idp: DevIdp,
    pub warden: warden_gateway::Running,
    pub url: String,
    pub data: tempfile::TempDir,
}

pub async fn setup() -> Setup {
    let idp = DevIdp::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let upstream = fixture_http(None).await;
    let identity = format!(
        "issuer = {:?}\njwks_min_refresh = \"0s\"\nadmin_groups = [\"admins\"]\n[identity.required_scopes]\n\"tools/call:fx__delete_records\" = [\"mcp:admin\"]\n",
        idp.issuer
    );
    let rest = format!(
        "[storage]\npath = {:?}\n{}",
        data.path().display().to_string(),
        http_upstream("fx", &upstream, "")
    );
    let warden = warden_with("", &identity, &rest).await;
    let url = warden.mcp_url();
    Setup {
        idp,
        warden,
        url,
        data,
    }
}

impl Setup {
    pub fn token(&self, user: &str, extra: Value) -> String {
        self.idp
            .mint(claims(user, "agent-1", &self.url, 300, extra))
    }

    /// A modern `tools/call` of `fx__echo` with this Authorization header value.
    pub async fn call_with(
        &self,
        authorization: Option<&str>,
        query: &str,
    ) -> (u16, String, Value) {
        let http = reqwest::Client::new();
        let body = modern_body(
            1,
            "tools/call",
            json!({ "name": "fx__echo", "arguments": { "text": "in" } }),
        );
        let url = format!("{}{query}", self.url);
        let mut r = modern_request(&http, &url, &body);
        if let Some(a) = authorization {
            r = r.header("authorization", a);
        }
        let r = r.send().await.unwrap();
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let a = read_answer(r).await;
        (a.status.as_u16(), challenge, a.reply().clone())
    }

    pub async fn call(&self, token: &str) -> (u16, String, Value) {
        self.call_with(Some(&format!("Bearer {token}")), "").await
    }
}
