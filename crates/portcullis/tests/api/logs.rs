//! `--log-format json`: one JSON object a line on stderr, each event of a request
//! carrying the id its answer names in `X-Request-Id`, and no secret anywhere.

use crate::helpers::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn json_logs_are_one_object_a_line_with_the_request_id_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.db").display());
    let key = dir.path().join("master.key");
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--database-url", &db])
        .arg("--master-key-file")
        .arg(&key)
        .env("PORTCULLIS_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "the server exited");
        if let Some(u) = line.strip_prefix("portcullis listening on ") {
            break u.trim().to_owned();
        }
    };
    let created = Command::new(bin())
        .args(["client", "create", "--name", "Logged", "--json"])
        .args(["--database-url", &db])
        .arg("--master-key-file")
        .arg(&key)
        .output()
        .unwrap();
    let c: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let (id, secret) = (
        c["client_id"].as_str().unwrap().to_owned(),
        c["client_secret"].as_str().unwrap().to_owned(),
    );
    // A right secret once, then wrong ones until the source is throttled (which
    // is logged, inside the request).
    let wrong = "pcs_notthesecretatall0000000000000";
    let mut ids = Vec::new();
    for attempt in 0..22 {
        let s = if attempt == 0 { secret.as_str() } else { wrong };
        let r = http()
            .post(format!("{url}/oauth/token"))
            .basic_auth(&id, Some(s))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        ids.push(r.headers()["x-request-id"].to_str().unwrap().to_owned());
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let lines: Vec<String> = stderr.lines().map_while(Result::ok).collect();
    let _ = child.wait();
    assert!(!lines.is_empty());
    let mut burst = None;
    for line in &lines {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            event["level"].is_string() && event["timestamp"].is_string(),
            "{line}"
        );
        assert!(
            !line.contains(&secret) && !line.contains(wrong),
            "a secret in the log: {line}"
        );
        if event["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed client authentication burst"))
        {
            burst = Some(event);
        }
    }
    let burst = burst.expect("the throttling is logged");
    let request = burst["span"]["id"]
        .as_str()
        .expect("the event names its request");
    assert!(ids.iter().any(|i| i == request), "{request} not in {ids:?}");
    assert_eq!(burst["span"]["path"], "/oauth/token");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "each request has its own id");
}
