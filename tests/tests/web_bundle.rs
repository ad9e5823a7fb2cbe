//! The real `pipewatch` binary serves its own web app from any working directory (the bundle
//! is compiled in by server/build.rs), and never shows a database password given as
//! `?password=` in DATABASE_URL: not on /status, /api/v1/status, nor in its log.

use pipewatch_tests::pipewatch_bin;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Where server/build.rs took the bundle from (the same rule: PIPEWATCH_SITE_ROOT, else
/// target/site in the workspace).
fn source_bundle() -> PathBuf {
    let site = match std::env::var("PIPEWATCH_SITE_ROOT") {
        Ok(s) if !s.is_empty() => PathBuf::from(s),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/site"),
    };
    site.join("pkg")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_its_bundle_from_any_directory_and_hides_the_database_password() {
    let pkg = source_bundle();
    for f in ["pipewatch.js", "pipewatch_bg.wasm", "pipewatch.css"] {
        assert!(
            pkg.join(f).is_file(),
            "{} is missing: run scripts/build-site.sh, then `cargo build -p server --bin pipewatch` (the bundle is compiled in)",
            pkg.join(f).display()
        );
    }
    // The test cluster's real password moves from `user:pass@` to `?password=`, so the server
    // must use it (or fail to connect) and must not show it anywhere.
    let url = url::Url::parse(&store::testing::fresh_database_url().await).unwrap();
    let secret = url
        .password()
        .expect("the test cluster URL carries a password")
        .to_string();
    let mut bare = url.clone();
    bare.set_password(None).unwrap();
    let url = format!("{bare}?password={secret}&application_name=pipewatch-test");
    let secret = secret.as_str();

    // A working directory with nothing in it: no target/site to fall back on.
    let cwd = std::env::temp_dir().join(format!("pipewatch-anywhere-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cwd);
    std::fs::create_dir_all(&cwd).unwrap();
    let log = cwd.join("stderr.log");
    // PIPEWATCH_TEST_BIN: a copy of the binary to test, for machines where several checkouts
    // share one target directory and may replace target/debug/pipewatch meanwhile.
    let bin = std::env::var_os("PIPEWATCH_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(pipewatch_bin);
    let mut child = Command::new(bin)
        .arg("serve")
        .current_dir(&cwd)
        .env_remove("PIPEWATCH_SITE_ROOT")
        .env_remove("PIPEWATCH_SERVER__SITE_ROOT")
        .env_remove("PIPEWATCH_CONFIG")
        .env("DATABASE_URL", &url)
        .env("PIPEWATCH_SERVER__LISTEN", "127.0.0.1:0")
        // Not an auth test: anonymous requests act as admin.
        .env("PIPEWATCH_AUTH__ANONYMOUS_ROLE", "admin")
        .env("PIPEWATCH_RECEIVERS__OTLP_GRPC_LISTEN", "")
        .env("PIPEWATCH_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start pipewatch");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(line.contains("pipewatch is up"), "{line}\n{}", log_text());
    let base = format!(
        "http://{}",
        line.split("http://")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
    );

    let client = reqwest::Client::new();
    for (file, content_type) in [
        ("pipewatch.css", "text/css"),
        ("pipewatch_bg.wasm", "application/wasm"),
        ("pipewatch.js", "text/javascript"),
    ] {
        let resp = client
            .get(format!("{base}/pkg/{file}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "/pkg/{file}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(
            ct.starts_with(content_type),
            "/pkg/{file}: content type {ct}"
        );
        let etag = resp.headers()["etag"].clone();
        let body = resp.bytes().await.unwrap();
        assert_eq!(
            &body[..],
            &std::fs::read(pkg.join(file)).unwrap()[..],
            "/pkg/{file} differs from the bundle in {}: rebuild pipewatch after scripts/build-site.sh",
            pkg.display()
        );
        let again = client
            .get(format!("{base}/pkg/{file}"))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "/pkg/{file} with its ETag");
    }
    let missing = client
        .get(format!("{base}/pkg/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // Nothing from the working directory is served as a static file.
    std::fs::write(cwd.join("private.txt"), "not for the web").unwrap();
    let page = client
        .get(format!("{base}/private.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    assert!(!page.text().await.unwrap().contains("not for the web"));
    let page = client.get(format!("{base}/explore")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/pkg/pipewatch"));

    for path in ["/status", "/api/v1/status"] {
        let body = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!body.contains(secret), "{path} shows the password: {body}");
        assert!(
            body.contains("password=***"),
            "{path} does not show the redacted URL: {body}"
        );
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "{}", log_text());
    let log = log_text();
    assert!(
        log.contains("password=***"),
        "the start-up log does not name the database: {log}"
    );
    assert!(!log.contains(secret), "the log shows the password: {log}");
    let _ = std::fs::remove_dir_all(&cwd);
}
